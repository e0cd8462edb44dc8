import { app, describeServices } from './app';
import { runWebNode } from './web-node';
import { startWorkerNode } from './worker-node';

/**
 * The quickstart in one process: a worker node and a web node sharing the app. With no URLs set
 * it runs on the in-memory default; with AMQP_URL, REDIS_URL or DATABASE_URL it uses the servers.
 */
async function main(): Promise<void> {
  console.log(`Conveyor quickstart on ${describeServices()}`);
  const worker = await startWorkerNode(false);
  try {
    await runWebNode();
  } finally {
    await worker.stop();
    await app.close();
  }
}

main().catch((error: Error) => {
  console.error(error);
  process.exitCode = 1;
});
