import { ConnectionError } from '../errors';

/**
 * The one hook for failures of work a transport or result backend does on its own (reconnects,
 * lost channels, polling, sweeps, a dead idle connection), where no caller's promise can carry
 * them. Every plugin takes it as its `onError` option. The error is always a
 * {@link ConnectionError} whose message holds no credentials; the plugin keeps retrying by itself.
 * A handler that throws is ignored.
 */
export type BackgroundErrorHandler = (error: ConnectionError) => void;

/** How often, at most, the default handler writes a warning. */
export const BACKGROUND_WARNING_INTERVAL_MS = 10_000;

/**
 * Delivers a plugin's background errors: to its `onError` option when one was given, otherwise
 * as a `console.warn` (at most one every {@link BACKGROUND_WARNING_INTERVAL_MS}, so an outage
 * does not flood the log); and to every listener added with {@link listen} (a worker that
 * republishes them as its `worker-error` event).
 */
export class BackgroundErrors {
  private readonly listeners = new Set<BackgroundErrorHandler>();
  private lastWarningAt = Number.NEGATIVE_INFINITY;

  /**
   * @param label the package, as it prefixes default warnings (`'amqp'` gives `[conveyor amqp]`)
   * @param handler the user's `onError` option, if any
   */
  constructor(
    private readonly label: string,
    private readonly handler?: BackgroundErrorHandler,
  ) {}

  /** Reports `error`, turned into a {@link ConnectionError} when it is not one. */
  report(error: unknown): void {
    const reported =
      error instanceof ConnectionError
        ? error
        : new ConnectionError(error instanceof Error ? error.message : String(error), {
            cause: error,
          });
    for (const listener of [this.handler ?? this.warn, ...this.listeners]) {
      try {
        listener(reported);
      } catch {
        // A failing hook must not stop the reconnect, poll or sweep that reported.
      }
    }
  }

  /** Adds a listener besides the `onError` option; returns a function that removes it. */
  listen(listener: BackgroundErrorHandler): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private readonly warn = (error: ConnectionError): void => {
    const now = Date.now();
    if (now - this.lastWarningAt < BACKGROUND_WARNING_INTERVAL_MS) return;
    this.lastWarningAt = now;
    console.warn(`[conveyor ${this.label}] ${error.message} (retrying)`);
  };
}
