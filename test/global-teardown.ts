/** Jest's global teardown: stops the containers the global setup started, if any. */
export default async function globalTeardown(): Promise<void> {
  const containers =
    (globalThis as { conveyorContainers?: Array<{ stop(): Promise<unknown> }> })
      .conveyorContainers ?? [];
  await Promise.all(containers.map((container) => container.stop()));
}
