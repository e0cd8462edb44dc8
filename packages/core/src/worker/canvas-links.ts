import type { TaskCall } from '../producer/producer';
import type { SendOptions } from '../producer/send-options';
import { parseCeleryTimestamp } from '../protocol/celery-time';
import type { SignatureDict, TaskEmbed, TaskMessage } from '../protocol/task-message';

/** A task call a message's links ask for; the app adds the task's own options and queue. */
export type LinkCall = Omit<TaskCall, 'queue' | 'taskOptions'>;

/**
 * Why this worker cannot honour a message's canvas links, or undefined when it can.
 *
 * Chains (`embed.chain`), callbacks (`link`) and errbacks (`link_error`) of plain task signatures
 * are followed the way Celery's worker follows them. A chord header task needs the result
 * backend's chord counting (Celery's `on_chord_part_return`), and a group or nested canvas as a
 * link needs a group result: this worker does neither, and refusing the message before it runs is
 * what keeps a workflow from stopping halfway without a word.
 */
export function unsupportedCanvas(embed: TaskEmbed): string | undefined {
  if (embed.chord) {
    return 'the task is part of a chord header, which Conveyor workers do not run yet; route chord headers to Celery workers';
  }
  const links = [...(embed.callbacks ?? []), ...(embed.errbacks ?? []), ...(embed.chain ?? [])];
  for (const link of links) {
    const problem = unsupportedSignature(link);
    if (problem) return problem;
  }
  return undefined;
}

function unsupportedSignature(signature: unknown): string | undefined {
  if (!isRecord(signature) || typeof signature.task !== 'string') {
    return 'a canvas link is not a task signature';
  }
  const type = signature.subtask_type;
  if (type !== null && type !== undefined) {
    return `a canvas link of type '${String(type)}' (${signature.task}) is not supported by Conveyor workers yet`;
  }
  const options = isRecord(signature.options) ? signature.options : {};
  for (const nested of [...signatureList(options.link), ...signatureList(options.link_error)]) {
    const problem = unsupportedSignature(nested);
    if (problem) return problem;
  }
  if (options.chord !== undefined && options.chord !== null) {
    return `a canvas link (${signature.task}) carries a chord, which Conveyor workers do not run yet`;
  }
  return undefined;
}

/**
 * What a task that succeeded with `value` sends next, as Celery's worker does: each callback with
 * the value prepended to its arguments (unless immutable), then the chain's next step (the last
 * signature of `embed.chain`) carrying the rest of the chain.
 */
export function successLinks(message: TaskMessage, value: unknown): LinkCall[] {
  const { headers, embed } = message;
  const parent = { id: headers.id, rootId: headers.root_id };
  const priority = message.properties.priority || undefined;
  const calls = (embed.callbacks ?? []).map((callback) =>
    callOf(callback, [value], parent, priority),
  );
  const chain = embed.chain ?? [];
  if (chain.length > 0) {
    const rest = chain.slice(0, -1);
    calls.push(callOf(chain[chain.length - 1]!, [value], parent, priority, rest));
  }
  return calls;
}

/**
 * What a task that failed for good sends: each errback with the failed task's id prepended to its
 * arguments (Celery's errbacks of tasks it cannot call in process get the same).
 */
export function failureLinks(message: TaskMessage): LinkCall[] {
  const { headers, embed } = message;
  const parent = { id: headers.id, rootId: headers.root_id };
  const priority = message.properties.priority || undefined;
  return (embed.errbacks ?? []).map((errback) => callOf(errback, [headers.id], parent, priority));
}

/** A step of a chain still to come, as a failure of an earlier step must mark it. */
export interface PendingChainStep {
  /** The step's task id (`options.task_id`, set when Celery or Conveyor froze the chain). */
  readonly id: string;
  /** Its task name. */
  readonly task: string;
  /** Its group (`options.group_id`), if any. */
  readonly group: string | null;
}

/**
 * The steps of `embed.chain` that will never run once this task failed for good: Celery's
 * `mark_as_failure` stores the same FAILURE for each of them, so that a caller waiting on the
 * chain's last step (`AsyncResult(last_id).get()`) gets the error rather than PENDING for ever.
 * Steps without a task id of their own (complex signatures) are skipped, as Celery skips them.
 *
 * Returned in the order they would have run. `embed.chain` is a stack (the next step last), and
 * Celery stores from its top, so the last step turns FAILURE first; a caller whose `get()` on it
 * returns could still read the steps between as PENDING. Storing next-step-first means that once
 * the last step reads FAILURE, every step before it does too.
 */
export function remainingChainSteps(message: TaskMessage): PendingChainStep[] {
  return [...(message.embed.chain ?? [])].reverse().flatMap((step) => {
    const options = isRecord(step.options) ? step.options : {};
    const id = options.task_id;
    if (typeof id !== 'string' || id === '') return [];
    const group = typeof options.group_id === 'string' ? options.group_id : null;
    return [{ id, task: step.task, group }];
  });
}

/** The call a signature dict describes, its options mapped the way Celery's apply_async reads them. */
function callOf(
  signature: SignatureDict,
  prepend: unknown[],
  parent: { id: string; rootId: string },
  priority: number | undefined,
  chain?: SignatureDict[],
): LinkCall {
  const o = isRecord(signature.options) ? signature.options : {};
  const args = Array.isArray(signature.args) ? signature.args : [];
  const options: SendOptions = {
    taskId: stringOption(o.task_id),
    queue: stringOption(o.queue),
    priority: numberOption(o.priority) ?? priority,
    countdownMs: secondsToMs(o.countdown),
    eta: dateOption(o.eta),
    expires:
      typeof o.expires === 'number' ? (secondsToMs(o.expires) as number) : dateOption(o.expires),
    timeLimitMs: secondsToMs(o.time_limit),
    softTimeLimitMs: secondsToMs(o.soft_time_limit),
    ignoreResult: typeof o.ignore_result === 'boolean' ? o.ignore_result : undefined,
    shadow: stringOption(o.shadow),
  };
  for (const key of Object.keys(options) as Array<keyof SendOptions>) {
    if (options[key] === undefined) delete options[key];
  }
  const groupId = stringOption(o.group_id);
  return {
    name: signature.task,
    args: signature.immutable ? [...args] : [...prepend, ...args],
    kwargs: isRecord(signature.kwargs) ? { ...signature.kwargs } : {},
    options,
    parent,
    embed: {
      callbacks: nullIfEmpty(signatureList(o.link)),
      errbacks: nullIfEmpty(signatureList(o.link_error)),
      chain: chain && chain.length > 0 ? chain : null,
      chord: null,
    },
    group: groupId
      ? { id: groupId, index: typeof o.group_index === 'number' ? o.group_index : null }
      : undefined,
  };
}

/** `link` and `link_error` may hold one signature or a list of them. */
function signatureList(value: unknown): SignatureDict[] {
  if (Array.isArray(value)) return value as SignatureDict[];
  return isRecord(value) ? [value as SignatureDict] : [];
}

function nullIfEmpty(list: SignatureDict[]): SignatureDict[] | null {
  return list.length > 0 ? list : null;
}

function stringOption(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function numberOption(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function secondsToMs(value: unknown): number | undefined {
  const seconds = numberOption(value);
  return seconds === undefined ? undefined : seconds * 1000;
}

function dateOption(value: unknown): Date | undefined {
  return typeof value === 'string' ? parseCeleryTimestamp(value) : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
