// A web node for the README's app: sends tasks, prints their ids, then waits for every result.
import { Add, app, AttendeeService, AttendeeUpdate } from './app';

async function main(count: number): Promise<void> {
  const sums = await Promise.all(
    Array.from({ length: count }, (_, i) => app.client(Add).delay(i, 1)),
  );
  const updates = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      app.client(AttendeeService).updateAttendees.delay(`evt-${i}`),
    ),
  );
  console.log(JSON.stringify({ sent: [...sums, ...updates].map((r) => r.id) }));
  const values = await Promise.all(sums.map((r) => r.get({ timeoutMs: 60_000 })));
  const reports = await Promise.all(updates.map((r) => r.get({ timeoutMs: 60_000 })));
  console.log(
    JSON.stringify({
      sums: values,
      reports: reports.map((r) => [r instanceof AttendeeUpdate, r.eventId, r.notified]),
    }),
  );
  await app.close();
}

void main(Number(process.argv[2] ?? 20));
