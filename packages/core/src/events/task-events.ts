import { repr } from '../protocol/python-repr';
import type { TaskMessage } from '../protocol/task-message';
import { exceptionMetaOf, tracebackOf } from '../result/exception-meta';
import type { EventDispatcher } from './event-dispatcher';

/**
 * A worker's task events in Celery's shape (`task-received` ... `task-rejected`, with the
 * fields Celery's worker sends), through its dispatcher: sent only while the `task` group is
 * enabled, and never waiting or throwing.
 */
export class TaskEvents {
  constructor(private readonly dispatcher: EventDispatcher) {}

  /** Whether task events are on (`-E`, `enable_events`). Callers skip building fields when off. */
  get enabled(): boolean {
    return this.dispatcher.sends('task');
  }

  received(message: TaskMessage): void {
    if (!this.enabled) return;
    const h = message.headers;
    this.dispatcher.send('task-received', {
      uuid: h.id,
      name: h.task,
      args: h.argsrepr,
      kwargs: h.kwargsrepr,
      root_id: h.root_id,
      parent_id: h.parent_id,
      retries: h.retries,
      eta: h.eta,
      expires: h.expires,
    });
  }

  started(id: string): void {
    if (this.enabled) this.dispatcher.send('task-started', { uuid: id });
  }

  /** `result` is the value as it goes on the wire; Celery sends its repr. */
  succeeded(id: string, result: unknown, runtimeMs: number): void {
    if (!this.enabled) return;
    this.dispatcher.send('task-succeeded', {
      uuid: id,
      result: repr(result),
      runtime: runtimeMs / 1000,
    });
  }

  failed(id: string, error: unknown): void {
    this.sendError('task-failed', id, error);
  }

  retried(id: string, error: unknown): void {
    this.sendError('task-retried', id, error);
  }

  /** `reason` as the worker knows it: `revoked`, `terminated` or `expired`. */
  revoked(id: string, reason: string): void {
    if (!this.enabled) return;
    this.dispatcher.send('task-revoked', {
      uuid: id,
      terminated: reason === 'terminated',
      signum: reason === 'terminated' ? 15 : null,
      expired: reason === 'expired',
    });
  }

  rejected(id: string, requeue: boolean): void {
    if (this.enabled) this.dispatcher.send('task-rejected', { uuid: id, requeue });
  }

  /** An event with the error as Celery sends it: its repr and its traceback. */
  private sendError(type: string, id: string, error: unknown): void {
    if (!this.enabled) return;
    this.dispatcher.send(type, {
      uuid: id,
      exception: exceptionRepr(error),
      traceback: tracebackOf(error) ?? '',
    });
  }
}

/** An error as Python's `repr` shows an exception: `ValueError('boom')`. */
export function exceptionRepr(error: unknown): string {
  const meta = exceptionMetaOf(error);
  return `${meta.exc_type}(${meta.exc_message.map(repr).join(', ')})`;
}
