import { Socket } from 'node:net';

/**
 * Where the test suite finds RabbitMQ, Redis and PostgreSQL, in order: a URL in the environment
 * (`AMQP_URL`, `REDIS_URL`, `DATABASE_URL`), else the service on its local default port, else,
 * where a Docker engine answers, a throwaway container started with testcontainers (for
 * laptops without the services installed; CI and these machines run them locally).
 */
export type ServiceSource = 'environment' | 'local' | 'container';

/** One service the suite needs. */
export interface ServiceSpec {
  /** The environment variable holding its URL. */
  readonly env: 'AMQP_URL' | 'REDIS_URL' | 'DATABASE_URL';
  /** Its URL on the local default port. */
  readonly localUrl: string;
  /** Image and port for a container, and how the URL reads once it runs. */
  readonly container: {
    readonly image: string;
    readonly port: number;
    readonly environment?: Readonly<Record<string, string>>;
    readonly url: (host: string, port: number) => string;
  };
}

export const SERVICES: readonly ServiceSpec[] = [
  {
    env: 'AMQP_URL',
    localUrl: 'amqp://guest:guest@127.0.0.1:5672',
    container: {
      image: 'rabbitmq:3.13-management',
      port: 5672,
      url: (host, port) => `amqp://guest:guest@${host}:${port}`,
    },
  },
  {
    env: 'REDIS_URL',
    localUrl: 'redis://127.0.0.1:6379',
    container: { image: 'redis:7', port: 6379, url: (host, port) => `redis://${host}:${port}` },
  },
  {
    env: 'DATABASE_URL',
    localUrl: 'postgresql://postgres@127.0.0.1:5432/test',
    container: {
      image: 'postgres:16',
      port: 5432,
      environment: { POSTGRES_HOST_AUTH_METHOD: 'trust', POSTGRES_DB: 'test' },
      url: (host, port) => `postgresql://postgres@${host}:${port}/test`,
    },
  },
];

/** What the choice looks at, as functions so that a unit test can answer for the machine. */
export interface ServiceProbes {
  /** The environment (normally `process.env`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Whether something accepts connections at the URL's host and port. */
  answers(url: string): Promise<boolean>;
  /** Whether a Docker engine answers (asked only when a service is missing). */
  dockerAnswers(): Promise<boolean>;
}

/** Which source serves `spec`; undefined when none can (the tests that need it will fail). */
export async function chooseSource(
  spec: ServiceSpec,
  probes: ServiceProbes,
): Promise<ServiceSource | undefined> {
  if (probes.env[spec.env]) return 'environment';
  if (await probes.answers(spec.localUrl)) return 'local';
  if (await probes.dockerAnswers()) return 'container';
  return undefined;
}

/** Whether a TCP connection to the URL's host and port opens within `timeoutMs`. */
export function tcpAnswers(url: string, timeoutMs = 1_000): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(Number(port), hostname.replace(/^\[|\]$/g, ''), () => done(true));
  });
}
