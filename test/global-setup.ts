import { chooseSource, SERVICES, tcpAnswers, type ServiceProbes } from './support/service-sources';

/** Containers started for this run, stopped by the global teardown. */
const started: Array<{ stop(): Promise<unknown> }> = [];

/**
 * Jest's global setup: sets `AMQP_URL`, `REDIS_URL` and `DATABASE_URL` for every test worker
 * (and the worker processes they start) from the first source that serves each service; see
 * `support/service-sources.ts`.
 */
export default async function globalSetup(): Promise<void> {
  let docker: Promise<boolean> | undefined;
  const probes: ServiceProbes = {
    env: process.env,
    answers: (url) => tcpAnswers(url),
    dockerAnswers: () => (docker ??= dockerAnswers()),
  };
  for (const spec of SERVICES) {
    const source = await chooseSource(spec, probes);
    if (source === 'local') process.env[spec.env] = spec.localUrl;
    if (source !== 'container') continue;
    const { GenericContainer } = await import('testcontainers');
    const container = await new GenericContainer(spec.container.image)
      .withExposedPorts(spec.container.port)
      .withEnvironment({ ...spec.container.environment })
      .start();
    started.push(container);
    process.env[spec.env] = spec.container.url(
      container.getHost(),
      container.getMappedPort(spec.container.port),
    );
  }
  (globalThis as { conveyorContainers?: typeof started }).conveyorContainers = started;
}

async function dockerAnswers(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}
