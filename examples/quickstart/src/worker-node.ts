import { app } from './app';
import { AttendeeService, InMemoryAttendees } from './tasks';

/** A worker node: runs the tasks until SIGTERM/SIGINT. Run it as `node dist/worker-node.js`. */
export async function startWorkerNode(handleSignals = true) {
  const worker = app.worker({
    concurrency: 4,
    instances: [new AttendeeService(new InMemoryAttendees())],
    handleSignals,
  });
  await worker.start();
  return worker;
}

if (require.main === module) {
  void startWorkerNode().then((worker) =>
    console.log(`worker ${worker.hostname} ready on ${worker.queues.join(', ')}`),
  );
}
