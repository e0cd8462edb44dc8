import type { LatencySummary } from '../stats';

/** Count, elapsed time and rate of one throughput measurement. */
export interface Throughput {
  n: number;
  ms: number;
  perSecond: number;
  /** CPU use during the measurement, % of one core, by process (the machine has `cores` × 100%). */
  cpu?: Record<string, number>;
  /** The worker process's CPU time per task, in µs (the `events` scenario). */
  workerCpuUsPerTask?: number;
  /**
   * CPU time per task in µs by process (the `events` scenario): worker, producer (the bench
   * process), receiver (when in its own process), rabbitmq (the whole server, which other work
   * on the machine may use too).
   */
  cpuUsPerTask?: Record<string, number>;
}

/** The raw amqplib ceiling: request/reply through a consumer in another process. */
export interface CeilingResult {
  prefetch: number;
  /** The first burst of the run. */
  throughput: Throughput;
  /** The same burst with a Conveyor task message's Celery headers on every request (for the analysis). */
  withCeleryHeaders: Throughput;
  latency: LatencySummary;
}

export interface NagleResult {
  noDelayOff: LatencySummary;
}

/** Conveyor end to end, worker in another process. */
export interface ConveyorThroughputResult extends Throughput {
  backend: string;
  /** How completions were counted. */
  counted: string;
  /** When every delay() had resolved (broker confirms), ms from the start. */
  sendMs: number;
  /** The ceiling burst measured just before this one: the ratio's denominator. */
  pairedCeiling: Throughput;
}

/** Raw amqplib + ioredis doing a Redis-backed task's work (the lower bound of the Redis target). */
export interface RawRedisResult {
  throughput: Throughput;
  /** The ceiling burst measured just before this one. */
  pairedCeiling: Throughput;
}

export interface ConveyorLatencyResult extends LatencySummary {
  backend: string;
}

export interface MemoryBackendResult {
  conveyor: Throughput;
  raw: Throughput;
}

export interface ProcessMemory {
  label: string;
  rssStart: number;
  rssEnd: number;
  rssPeak: number;
  heapUsedStart: number;
  heapUsedEnd: number;
}

export interface BacklogResult {
  n: number;
  workers: number;
  publishMs: number;
  publishPerSecond: number;
  drainMs: number;
  drainPerSecond: number;
  /** Tasks each worker acked. */
  perWorker: number[];
  memory: ProcessMemory[];
}

/** The one-way pipeline (send N, all acked, no results) with each side raw or Conveyor. */
export interface SplitResult {
  'raw->raw': Throughput;
  'conveyor->raw': Throughput;
  'raw->conveyor': Throughput;
  'conveyor->conveyor': Throughput;
}

/** Task events on (with a receiver consuming them) against off, in alternating pairs. */
/** Where the `events` scenario's receiver runs (`BENCH_EVENTS_RECEIVER`). */
export type EventsReceiverPlacement = 'process' | 'inline' | 'none';

export interface EventsResult {
  /**
   * Where the receiver ran: `process` (its own, the default), `inline` (in the bench process,
   * beside the producer) or `none` (no receiver bound: the sending side alone).
   */
  receiver: EventsReceiverPlacement;
  off: Throughput[];
  on: Throughput[];
  medianOff: number;
  medianOn: number;
  /** Task events the receiver got during the measurements with events on. */
  eventsReceived: number;
  /** Events the workers sent and dropped (worker events included), over the runs with events on. */
  workerEvents: { sent: number; dropped: number };
}
