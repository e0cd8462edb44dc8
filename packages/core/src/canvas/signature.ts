import type { SendOptions } from '../producer/send-options';
import type { SignatureDict } from '../protocol/task-message';
import type { AsyncResult } from '../result/async-result';

/** Sends a signature; provided by the app. Internal. */
export type SignatureSender = <R>(signature: Signature<R>) => Promise<AsyncResult<R>>;

/**
 * A task call that is described but not sent: a task name with its arguments and options, the
 * building block of chains, groups and chords. Serializes to Celery's signature dict.
 */
export class Signature<R = unknown> {
  constructor(
    /** Task name. */
    readonly task: string,
    /** Positional arguments, already in wire form. */
    readonly args: readonly unknown[],
    /** Keyword arguments, in wire form. */
    readonly kwargs: Readonly<Record<string, unknown>>,
    /** Call options. */
    readonly options: Readonly<SendOptions>,
    private readonly sender: SignatureSender,
  ) {}

  /** Sends it. */
  delay(): Promise<AsyncResult<R>> {
    return this.sender(this);
  }

  /** A copy with more options. */
  set(options: SendOptions): Signature<R> {
    return new Signature<R>(
      this.task,
      this.args,
      this.kwargs,
      { ...this.options, ...options },
      this.sender,
    );
  }

  /** Celery's dict form, as it travels in `callbacks`, `chain` and `chord`. */
  toJSON(): SignatureDict {
    const options: Record<string, unknown> = {};
    if (this.options.queue) options.queue = this.options.queue;
    if (this.options.priority !== undefined) options.priority = this.options.priority;
    if (this.options.taskId) options.task_id = this.options.taskId;
    if (this.options.countdownMs !== undefined) options.countdown = this.options.countdownMs / 1000;
    return {
      task: this.task,
      args: [...this.args],
      kwargs: { ...this.kwargs },
      options,
      subtask_type: null,
      immutable: false,
    };
  }
}
