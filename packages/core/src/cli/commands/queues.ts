import type { Command } from 'commander';
import { EXIT_UNAVAILABLE, EXIT_USAGE } from '../../defaults';
import { queueReport, type QueueReport, type TaskQueueReport } from '../../inspection/queue-report';
import { processIo, type CommandIo } from '../command-io';
import { commaList } from '../option-parsers';
import type { Painter } from '../output/paint';
import { renderTable, type Cell } from '../output/table';
import { appCommand, appQueues, printJson, withApp, type AppCommandOptions } from './app-command';

interface QueuesOptions extends AppCommandOptions {
  queues?: string[];
}

/**
 * `conveyor queues`: each task queue's ready messages, consumers and dead letters, unacked
 * messages and rates when RabbitMQ's management API answers, and the delayed total.
 */
export function queuesCommand(io: CommandIo = processIo()) {
  return (program: Command): void => {
    appCommand(
      program,
      'queues',
      "Show the app's task queues: backlog, consumers, dead letters, delayed",
    )
      .option(
        '-Q, --queues <names>',
        "comma-separated queues (default: the app's default queue and its tasks' queues)",
        commaList,
      )
      .addHelpText(
        'after',
        `
READY and CONSUMERS come from the broker at once (a passive declare: nothing is created); DEAD
is the depth of <queue>.dead. UNACKED and the rates come from RabbitMQ's management API, when
it answers (shown as - otherwise). DELAYED counts the messages waiting in the delay levels,
which every queue shares, so it is one total. Exit codes: 0 shown; ${EXIT_USAGE} bad usage; ${EXIT_UNAVAILABLE} broker
unreachable.`,
      )
      .action((options: QueuesOptions) =>
        withApp(options, io, async ({ app, print, paint }) => {
          const report = await queueReport(app.transport, options.queues ?? appQueues(app));
          if (options.json) printJson(io, report);
          else print(renderQueueReport(report, paint));
        }),
      );
  };
}

/** The human form of a {@link QueueReport}. */
export function renderQueueReport(report: QueueReport, paint: Painter): string {
  const managed = report.queues.some((q) => q.unacked !== undefined);
  const rows = report.queues.map((q): Cell[] => [
    q.exists ? q.name : { text: `${q.name} (absent)`, style: 'dim' },
    q.ready,
    q.unacked ?? '-',
    q.consumers === 0 && q.ready > 0 ? { text: '0', style: 'yellow' } : q.consumers,
    q.dead > 0 ? { text: String(q.dead), style: 'red' } : q.dead,
    rate(q, 'published'),
    rate(q, 'delivered'),
    rate(q, 'acked'),
  ]);
  const table = renderTable(
    [
      { header: 'QUEUE' },
      { header: 'READY', align: 'right' },
      { header: 'UNACKED', align: 'right' },
      { header: 'CONSUMERS', align: 'right' },
      { header: 'DEAD', align: 'right' },
      { header: 'PUBLISH/S', align: 'right' },
      { header: 'DELIVER/S', align: 'right' },
      { header: 'ACK/S', align: 'right' },
    ],
    rows,
    paint,
  );
  const lines = [table, ''];
  lines.push(
    report.delayed === undefined
      ? 'Delayed: the transport cannot tell.'
      : `Delayed, all queues: ${report.delayed}`,
  );
  if (!managed && report.queues.some((q) => q.exists)) {
    lines.push(paint('Unacked and rates: RabbitMQ management API not reachable.', 'dim'));
  }
  return lines.join('\n');
}

function rate(queue: TaskQueueReport, which: 'published' | 'delivered' | 'acked'): string {
  const value = queue.rates?.[which];
  return value === undefined ? '-' : value.toFixed(1);
}
