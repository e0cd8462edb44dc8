import type { ControlAddress } from '../protocol/control-message';

/** Who a command is for, and how long to wait for replies. */
export interface ControlOptions extends ControlAddress {
  /** How long to collect replies, in ms. @defaultValue 1_000 */
  timeoutMs?: number;
  /** Stop collecting after this many replies. @defaultValue the number of destinations, if any */
  limit?: number;
}

/** Options of `Control.broadcast`. */
export interface BroadcastOptions extends ControlOptions {
  /** Keyword arguments of the command. */
  arguments?: Record<string, unknown>;
  /** Collect replies (`true`), or only send (`false`). @defaultValue false */
  reply?: boolean;
}

/** One reply per worker, keyed by its hostname, as Celery's `broadcast(reply=True)` returns them. */
export type NodeReplies<T = unknown> = Array<Record<string, T>>;

/** The `{ok}` or `{error}` answer of a control command. */
export type ControlAnswer = { ok: string } | { error: string };
