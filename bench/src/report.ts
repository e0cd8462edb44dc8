import type { LatencySummary } from './stats';
import { mib } from './stats';
import type {
  BacklogResult,
  CeilingResult,
  ConveyorLatencyResult,
  ConveyorThroughputResult,
  MemoryBackendResult,
  NagleResult,
  RawRedisResult,
  SplitResult,
  Throughput,
  EventsResult,
} from './scenarios/results';

/** Everything a run measured; scenarios not run are absent. */
export interface BenchResults {
  ceiling?: CeilingResult;
  nagle?: NagleResult;
  throughput: Partial<Record<'redis' | 'postgres' | 'none', ConveyorThroughputResult>>;
  latency: Partial<Record<'redis' | 'postgres', ConveyorLatencyResult>>;
  memoryBackend?: MemoryBackendResult;
  backlog?: BacklogResult;
  split?: SplitResult;
  rawRedis?: RawRedisResult;
  events?: EventsResult;
}

/** Where the `events` scenario's receiver ran, in words. */
const receiverText = {
  process: 'a receiver in its own process',
  inline: 'a receiver in the bench process',
  none: 'no receiver bound',
} as const;

/** One target of the issue and whether this run met it. */
export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean | null;
}

export const RSS_GROWTH_LIMIT_BYTES = 50 * 1024 * 1024;

const rate = (n: number): string => `${Math.round(n).toLocaleString('en-US')}/s`;
const ms = (n: number): string => `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms`;
const pct = (n: number): string => `${(n * 100).toFixed(0)}%`;
const lat = (s: LatencySummary): string => `p50 ${ms(s.p50)} · p99 ${ms(s.p99)} · max ${ms(s.max)}`;

export function checkTargets(r: BenchResults): TargetCheck[] {
  const ceiling = r.throughput.redis?.pairedCeiling.perSecond;
  const redis = r.throughput.redis?.perSecond;
  const pg = r.throughput.postgres?.perSecond;
  const checks: TargetCheck[] = [];
  checks.push(
    redis !== undefined && ceiling !== undefined
      ? {
          target: 'Redis throughput ≥ 80% of raw amqplib ceiling',
          measured: pct(redis / ceiling),
          met: redis / ceiling >= 0.8,
        }
      : { target: 'Redis throughput ≥ 80% of raw amqplib ceiling', measured: 'not run', met: null },
  );
  const p50 = r.latency.redis?.p50;
  checks.push(
    p50 !== undefined
      ? { target: 'Redis round trip p50 ≤ 2 ms', measured: ms(p50), met: p50 <= 2 }
      : { target: 'Redis round trip p50 ≤ 2 ms', measured: 'not run', met: null },
  );
  checks.push(
    pg !== undefined && redis !== undefined
      ? {
          target: 'PostgreSQL throughput ≥ 50% of Redis',
          measured: pct(pg / redis),
          met: pg / redis >= 0.5,
        }
      : { target: 'PostgreSQL throughput ≥ 50% of Redis', measured: 'not run', met: null },
  );
  const growth = r.backlog?.memory
    .filter((m) => m.label.startsWith('worker'))
    .map((m) => m.rssEnd - m.rssStart);
  checks.push(
    growth && growth.length > 0
      ? {
          target: 'Worker RSS growth < 50 MB over the backlog',
          measured: growth.map((g) => `${mib(g)} MB`).join(', '),
          met: growth.every((g) => g < RSS_GROWTH_LIMIT_BYTES),
        }
      : { target: 'Worker RSS growth < 50 MB over the backlog', measured: 'not run', met: null },
  );
  const ev = r.events;
  checks.push(
    ev
      ? {
          target: `Task events on (${receiverText[ev.receiver]}) within 5% of events off (medians of 3 pairs)`,
          measured: pct(ev.medianOn / ev.medianOff),
          // Without a receiver bound the criterion is not what was measured.
          met: ev.receiver === 'none' ? null : ev.medianOn / ev.medianOff >= 0.95,
        }
      : {
          target: 'Task events on (receiver bound) within 5% of events off (medians of 3 pairs)',
          measured: 'not run',
          met: null,
        },
  );
  return checks;
}

/** CPU shares of a measurement, busiest first, idle services left out. */
/** The worker CPU µs per task of each measurement. */
function cpuPerTask(runs: Throughput[]): string {
  return `${runs.map((t) => (t.workerCpuUsPerTask ?? Number.NaN).toFixed(1)).join(', ')} µs/task`;
}

/** The CPU per task of every process but RabbitMQ (which other work on the machine shares), summed. */
function nodeCpuPerTask(runs: Throughput[]): string {
  const sums = runs.map((t) =>
    Object.entries(t.cpuUsPerTask ?? {})
      .filter(([name]) => name !== 'rabbitmq')
      .reduce((sum, [, us]) => sum + us, 0),
  );
  return `${sums.map((us) => us.toFixed(1)).join(', ')} µs/task`;
}

function cpuText(cpu: Record<string, number> | undefined): string {
  if (!cpu) return '';
  return Object.entries(cpu)
    .filter(([, pct]) => pct >= 2)
    .sort((a, b) => b[1] - a[1])
    .map(([name, pct]) => `${name} ${pct}`)
    .join(', ');
}

/** The results as rows: scenario, Conveyor, raw amqplib, ratio, CPU. */
export function resultRows(r: BenchResults): string[][] {
  const rows: string[][] = [];
  const c = r.ceiling;
  if (c) {
    rows.push([
      `Ceiling: raw amqplib request/reply, ${c.throughput.n.toLocaleString('en-US')} msgs, prefetch ${c.prefetch}`,
      '',
      rate(c.throughput.perSecond),
      '',
      cpuText(c.throughput.cpu),
    ]);
    rows.push([
      "Ceiling with a Conveyor task message's Celery headers on each request (analysis)",
      '',
      rate(c.withCeleryHeaders.perSecond),
      `${pct(c.withCeleryHeaders.perSecond / c.throughput.perSecond)} of plain`,
      cpuText(c.withCeleryHeaders.cpu),
    ]);
  }
  for (const backend of ['redis', 'postgres', 'none'] as const) {
    const t = r.throughput[backend];
    if (!t) continue;
    rows.push([
      `Throughput, ${t.n.toLocaleString('en-US')} tasks, ${backend === 'none' ? 'no backend (worker ack count)' : `${backend} backend`}`,
      rate(t.perSecond),
      `${rate(t.pairedCeiling.perSecond)} (measured just before)`,
      pct(t.perSecond / t.pairedCeiling.perSecond),
      `${cpuText(t.cpu)} (raw: ${cpuText(t.pairedCeiling.cpu)}); all sent at ${(t.sendMs / 1000).toFixed(1)} s`,
    ]);
  }
  const raw = r.rawRedis;
  if (raw) {
    const redis = r.throughput.redis;
    rows.push([
      `Raw amqplib + ioredis doing a Redis-backed task's work, ${raw.throughput.n.toLocaleString('en-US')} tasks: Celery headers, a SUBSCRIBE and UNSUBSCRIBE per task, the consumer stores (SET + PUBLISH) then acks (analysis: the target's lower bound)`,
      redis
        ? `Conveyor's Redis run is ${pct(redis.perSecond / raw.throughput.perSecond)} of this`
        : '',
      `${rate(raw.throughput.perSecond)} (ceiling just before: ${rate(raw.pairedCeiling.perSecond)})`,
      pct(raw.throughput.perSecond / raw.pairedCeiling.perSecond),
      `${cpuText(raw.throughput.cpu)} (raw ceiling: ${cpuText(raw.pairedCeiling.cpu)})`,
    ]);
  }
  for (const backend of ['redis', 'postgres'] as const) {
    const l = r.latency[backend];
    if (!l) continue;
    rows.push([
      `Latency, ${l.n.toLocaleString('en-US')} sequential delay().get(), ${backend}`,
      lat(l),
      c ? lat(c.latency) : '—',
      c ? `p50 ×${(l.p50 / c.latency.p50).toFixed(1)}` : '—',
    ]);
  }
  if (r.nagle) {
    const s = r.nagle.noDelayOff;
    rows.push([
      `Raw request/reply with TCP no-delay OFF (Nagle), ${s.n} round trips`,
      '',
      `p50 ${ms(s.p50)} · p90 ${ms(s.p90)} · p99 ${ms(s.p99)}`,
      c ? `p50 ×${(s.p50 / c.latency.p50).toFixed(1)} vs no-delay on` : '',
    ]);
  }
  const split = r.split;
  if (split) {
    const base = split['raw->raw'];
    const cells: Array<[keyof SplitResult, string]> = [
      ['raw->raw', 'raw amqplib producer → raw consumer (the protocol alone)'],
      ['conveyor->raw', 'Conveyor producer → raw consumer'],
      ['raw->conveyor', 'raw amqplib producer → Conveyor worker'],
      ['conveyor->conveyor', 'Conveyor producer → Conveyor worker'],
    ];
    for (const [key, label] of cells) {
      const t = split[key];
      const isBase = key === 'raw->raw';
      rows.push([
        `Split, ${t.n.toLocaleString('en-US')} tasks with Celery headers, sent at once until all acked: ${label}`,
        isBase ? '' : rate(t.perSecond),
        isBase ? rate(t.perSecond) : '',
        isBase ? '' : `${pct(t.perSecond / base.perSecond)} of raw → raw`,
        cpuText(t.cpu),
      ]);
    }
  }
  const ev = r.events;
  if (ev) {
    rows.push([
      `Task events, no backend, ${ev.on[0]!.n.toLocaleString('en-US')} tasks: on with ${receiverText[ev.receiver]} (workers sent ${ev.workerEvents.sent.toLocaleString('en-US')} events, dropped ${ev.workerEvents.dropped.toLocaleString('en-US')}; received ${ev.eventsReceived.toLocaleString('en-US')}) vs off, medians of ${ev.on.length} alternating pairs`,
      `${rate(ev.medianOn)} (${ev.on.map((t) => rate(t.perSecond)).join(', ')}); worker CPU ${cpuPerTask(ev.on)}; node processes ${nodeCpuPerTask(ev.on)}`,
      `off: ${rate(ev.medianOff)} (${ev.off.map((t) => rate(t.perSecond)).join(', ')}); worker CPU ${cpuPerTask(ev.off)}; node processes ${nodeCpuPerTask(ev.off)}`,
      pct(ev.medianOn / ev.medianOff),
    ]);
  }
  const m = r.memoryBackend;
  if (m) {
    rows.push([
      `AMQP transport + memory backend, one process, ${m.conveyor.n.toLocaleString('en-US')} tasks (raw: publish/consume/ack)`,
      rate(m.conveyor.perSecond),
      rate(m.raw.perSecond),
      pct(m.conveyor.perSecond / m.raw.perSecond),
    ]);
  }
  const b = r.backlog;
  if (b) {
    rows.push([
      `Backlog: ${b.n.toLocaleString('en-US')} tasks published (window 2,000)`,
      `${ms(b.publishMs)} · ${rate(b.publishPerSecond)}`,
      '',
      '',
    ]);
    rows.push([
      `Backlog: drained by ${b.workers} workers (Redis backend), per worker ${b.perWorker.map((n) => n.toLocaleString('en-US')).join(' / ')}`,
      `${(b.drainMs / 1000).toFixed(1)} s · ${rate(b.drainPerSecond)}`,
      '',
      '',
    ]);
    for (const p of b.memory) {
      rows.push([
        `Backlog RSS, ${p.label}: start → end (peak)`,
        `${mib(p.rssStart)} → ${mib(p.rssEnd)} MB (${mib(p.rssPeak)}), growth ${mib(p.rssEnd - p.rssStart)} MB`,
        '',
        '',
      ]);
    }
  }
  return rows;
}

/**
 * CPU time per task (per round trip for the raw ceiling) of every process, in µs: the CPU shares
 * of a measurement turned into a budget. On a saturated machine the total per task decides the
 * rate, so this shows which process would have to give up how much for a ratio to move.
 */
export function cpuBudgetRows(r: BenchResults): string[][] {
  const rows: string[][] = [];
  const add = (label: string, t: Throughput | undefined): void => {
    if (!t?.cpu) return;
    const us = Object.entries(t.cpu)
      .map(([name, share]): [string, number] => [name, ((share / 100) * t.ms * 1000) / t.n])
      .filter(([, v]) => v >= 1)
      .sort((a, b) => b[1] - a[1]);
    const total = us.reduce((sum, [, v]) => sum + v, 0);
    rows.push([
      label,
      us.map(([name, v]) => `${name} ${v.toFixed(0)}`).join(', '),
      total.toFixed(0),
    ]);
  };
  add('Ceiling: raw request/reply, plain (per round trip)', r.ceiling?.throughput);
  add('Ceiling with Celery headers on each request (per round trip)', r.ceiling?.withCeleryHeaders);
  for (const backend of ['redis', 'postgres', 'none'] as const) {
    const t = r.throughput[backend];
    if (!t) continue;
    add(`Throughput, ${backend === 'none' ? 'no backend' : backend}`, t);
    add(`  its paired ceiling (per round trip)`, t.pairedCeiling);
  }
  add('Raw amqplib + ioredis, a Redis-backed task', r.rawRedis?.throughput);
  add('  its paired ceiling (per round trip)', r.rawRedis?.pairedCeiling);
  const split = r.split;
  if (split) {
    add('Split raw → raw, Celery headers (per message, one way)', split['raw->raw']);
    add('Split Conveyor → Conveyor (per message, one way)', split['conveyor->conveyor']);
  }
  return rows;
}

/** A Markdown table (it also reads well on a terminal). */
export function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: string[]): string =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}

export function renderReport(r: BenchResults): string {
  const rows = resultRows(r).map((row) => [...row, ...Array<string>(5 - row.length).fill('')]);
  const results = markdownTable(
    ['Scenario', 'Conveyor', 'Raw amqplib', 'Ratio', 'CPU % of one core (2 cores = 200)'],
    rows,
  );
  const targets = markdownTable(
    ['Target', 'Measured', 'Met'],
    checkTargets(r).map((t) => [
      t.target,
      t.measured,
      // Measured but not in the target's setup (events without a receiver): no verdict.
      t.met === null ? (t.measured === 'not run' ? 'not run' : 'n/a') : t.met ? 'yes' : 'NO',
    ]),
  );
  const budget = markdownTable(['CPU per task', 'µs by process', 'Total µs'], cpuBudgetRows(r));
  return `${results}\n\n${budget}\n\n${targets}`;
}
