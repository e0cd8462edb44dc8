/**
 * `npm run bench`: every scenario, a table on stdout, JSON in bench/results/.
 *
 *   node bench/dist/run.js [--only a,b] [--backends redis,postgres,none] [--quick]
 *                          [--concurrency N] [--prefetch-multiplier M] [--profile DIR]
 *
 * `--profile DIR` runs every forked child with `--cpu-prof` into DIR (run the bench itself with
 * `node --cpu-prof` to profile the producer too); `node bench/dist/profile-summary.js FILE`
 * summarises a profile.
 * Scenarios: ceiling, throughput, split, latency, memory, backlog, nagle, events. Throughput and latency also
 * run the ceiling, which their ratios need.
 */
import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, platform, release } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { childExecArgv, killAllChildren, stopAllChildren } from './children';
import { cleanUp } from './cleanup';
import { experiment } from './conveyor-app';
import type { BenchContext, BenchSizes } from './context';
import { RunNames } from './names';
import { checkTargets, renderReport, type BenchResults } from './report';
import { runBacklog } from './scenarios/backlog';
import { runEvents } from './scenarios/events';
import { conveyorTaskHeaders, RawCeiling, runNagle } from './scenarios/ceiling';
import { runLatency, runThroughput } from './scenarios/conveyor-remote';
import { runMemoryBackend } from './scenarios/memory-backend';
import { runRawRedis } from './scenarios/raw-redis';
import { runSplit } from './scenarios/split';
import { AMQP_URL, DATABASE_URL, REDIS_URL } from './services';
import { summarize } from './stats';

const SCENARIOS = [
  'ceiling',
  'throughput',
  'split',
  'latency',
  'memory',
  'backlog',
  'nagle',
  'events',
] as const;
type Scenario = (typeof SCENARIOS)[number];

const FULL: BenchSizes = {
  throughput: 20_000,
  latency: 1_000,
  backlog: 100_000,
  memory: 20_000,
  nagle: 100,
  warmup: 1_000,
};
const QUICK: BenchSizes = {
  throughput: 2_000,
  latency: 200,
  backlog: 10_000,
  memory: 2_000,
  nagle: 10,
  warmup: 200,
};

interface RunOptions {
  only: Set<Scenario>;
  backends: Set<string>;
  sizes: BenchSizes;
  concurrency: number;
  prefetchMultiplier: number;
  quick: boolean;
}

function parse(): RunOptions {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      concurrency: { type: 'string', default: '50' },
      'prefetch-multiplier': { type: 'string', default: '2' },
      profile: { type: 'string' },
      backends: { type: 'string', default: 'redis,postgres,none' },
    },
  });
  const only = new Set<Scenario>();
  for (const name of (values.only ?? SCENARIOS.join(',')).split(',').map((s) => s.trim())) {
    if (!SCENARIOS.includes(name as Scenario))
      throw new Error(`unknown scenario '${name}'; known: ${SCENARIOS.join(', ')}`);
    only.add(name as Scenario);
  }
  if (only.has('throughput') || only.has('latency')) only.add('ceiling');
  if (values.profile) {
    const dir = resolve(values.profile);
    mkdirSync(dir, { recursive: true });
    childExecArgv.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
  }
  const concurrency = Number(values.concurrency);
  const prefetchMultiplier = Number(values['prefetch-multiplier']);
  const backends = new Set((values.backends ?? '').split(',').map((b) => b.trim()));
  for (const b of backends)
    if (!['redis', 'postgres', 'none'].includes(b)) throw new Error(`unknown backend '${b}'`);
  if (
    !Number.isInteger(concurrency) ||
    concurrency < 1 ||
    !Number.isInteger(prefetchMultiplier) ||
    prefetchMultiplier < 1
  ) {
    throw new Error('--concurrency and --prefetch-multiplier take positive integers');
  }
  return {
    only,
    backends,
    sizes: values.quick ? QUICK : FULL,
    concurrency,
    prefetchMultiplier,
    quick: values.quick ?? false,
  };
}

function machine(): Record<string, unknown> {
  const list = cpus();
  return {
    cores: list.length,
    cpuModel: list[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${platform()} ${release()}`,
    totalMemoryMiB: Math.round(totalmem() / 1024 / 1024),
  };
}

async function main(): Promise<void> {
  const options = parse();
  const names = new RunNames();
  const urls = { amqp: AMQP_URL, redis: REDIS_URL, database: DATABASE_URL };
  const started = Date.now();
  const ctx: BenchContext = {
    names,
    urls,
    sizes: options.sizes,
    concurrency: options.concurrency,
    prefetchMultiplier: options.prefetchMultiplier,
    prefetch: options.concurrency * options.prefetchMultiplier,
    log: (message) =>
      console.error(`[bench ${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`),
  };
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    ctx.log('interrupted: stopping children and cleaning up');
    void finish().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAllChildren);

  let finished: Promise<void> | undefined;
  function finish(): Promise<void> {
    finished ??= (async () => {
      await stopAllChildren();
      const problems = await cleanUp(names, urls);
      for (const problem of problems) console.error(`[bench] cleanup: ${problem}`);
      ctx.log(`cleaned up run ${names.id}`);
    })();
    return finished;
  }

  const results: BenchResults = { throughput: {}, latency: {} };
  ctx.log(
    `run ${names.id}: ${[...options.only].join(', ')}; concurrency ${ctx.concurrency}, prefetch ${ctx.prefetch}${options.quick ? ' (quick)' : ''}`,
  );
  try {
    const ceiling = options.only.has('ceiling') ? await RawCeiling.open(ctx) : undefined;
    if (ceiling) {
      const throughput = await ceiling.burst();
      const withCeleryHeaders = await ceiling.burst(await conveyorTaskHeaders());
      const latency = summarize(await ceiling.roundTrips(ctx.sizes.latency));
      results.ceiling = { prefetch: ctx.prefetch, throughput, withCeleryHeaders, latency };
    }
    if (options.only.has('throughput')) {
      for (const backend of ['redis', 'postgres', 'none'] as const) {
        if (options.backends.has(backend))
          results.throughput[backend] = await runThroughput(ctx, backend, () => ceiling!.burst());
      }
      if (options.backends.has('redis')) {
        results.rawRedis = await runRawRedis(
          ctx,
          () => ceiling!.burst(),
          await conveyorTaskHeaders(),
        );
      }
    }
    await ceiling?.close();
    if (options.only.has('split')) results.split = await runSplit(ctx);
    if (options.only.has('latency')) {
      for (const backend of ['redis', 'postgres'] as const) {
        if (options.backends.has(backend))
          results.latency[backend] = await runLatency(ctx, backend);
      }
    }
    if (options.only.has('memory')) results.memoryBackend = await runMemoryBackend(ctx);
    if (options.only.has('backlog')) results.backlog = await runBacklog(ctx);
    if (options.only.has('nagle')) results.nagle = await runNagle(ctx);
    if (options.only.has('events')) results.events = await runEvents(ctx);
  } finally {
    await finish();
  }

  const report = renderReport(results);
  console.log(report);
  const date = new Date().toISOString();
  const document = {
    date,
    runId: names.id,
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: machine(),
    settings: {
      experiment: experiment(),
      sizes: options.sizes,
      quick: options.quick,
      concurrency: ctx.concurrency,
      prefetchMultiplier: ctx.prefetchMultiplier,
      prefetch: ctx.prefetch,
    },
    results,
    targets: checkTargets(results),
    table: report,
  };
  const dir = join(__dirname, '..', 'results');
  mkdirSync(dir, { recursive: true });
  const json = `${JSON.stringify(document, null, 2)}\n`;
  // Only a complete run at full size is "latest"; quick or partial runs are kept apart.
  const complete =
    !process.env.BENCH_EXPERIMENT &&
    !options.quick &&
    options.only.size === SCENARIOS.length &&
    options.backends.size === 3;
  const suffix = complete ? '' : '-partial';
  writeFileSync(join(dir, `${date.replace(/:/g, '-')}${suffix}.json`), json);
  writeFileSync(join(dir, `latest${suffix}.json`), json);
  ctx.log(`results written to bench/results/latest${suffix}.json`);
}

main().catch((error: Error) => {
  console.error(error);
  process.exitCode = 1;
});
