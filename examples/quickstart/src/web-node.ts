import { app } from './app';
import { Add, AttendeeService } from './tasks';

/** A web node: sends tasks and waits for their results. Run it as `node dist/web-node.js`. */
export async function runWebNode(): Promise<void> {
  const sum = await app.client(Add).delay(4, 5);
  console.log(`add(4, 5) = ${await sum.get({ timeoutMs: 10_000 })}`);

  const update = await app.client(AttendeeService).updateAttendees.delay('evt-42');
  const report = await update.get({ timeoutMs: 10_000 });
  console.log(
    `updateAttendees('evt-42'): notified ${report.notified} attendees of ${report.eventId} (${report.updatedAt})`,
  );
}

if (require.main === module) {
  runWebNode()
    .then(() => app.close())
    .catch(async (error: Error) => {
      console.error(error.message);
      await app.close();
      process.exitCode = 1;
    });
}
