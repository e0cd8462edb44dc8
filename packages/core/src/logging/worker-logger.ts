import pino, { type Logger } from 'pino';
import { celeryLines, type TextOutput } from './celery-lines';
import type { LogLevel } from './log-level';

/**
 * What the worker log needs of a logger: pino's `(fields, message)` methods. A pino logger (or a
 * child of one) fits as it is; so does any logger with methods of that shape.
 */
export interface WorkerLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** How log records are written: Celery-like text lines, or one JSON object per line. */
export type LogFormat = 'text' | 'json';

/** Options of {@link createWorkerLogger}. */
export interface WorkerLoggerOptions {
  /**
   * Least severe level written.
   * @defaultValue `'info'`
   */
  level?: LogLevel | undefined;
  /**
   * `'text'` for people, `'json'` (pino's records) for log shippers.
   * @defaultValue `'text'`
   */
  format?: LogFormat | undefined;
  /**
   * Where lines go.
   * @defaultValue `process.stdout`
   */
  output?: TextOutput | undefined;
}

/** The pino logger `conveyor worker` writes with, unless the app module exports its own. */
export function createWorkerLogger(options: WorkerLoggerOptions = {}): Logger {
  const output = options.output ?? process.stdout;
  const level = options.level ?? 'info';
  if (options.format === 'json') {
    return pino(
      { level, timestamp: pino.stdTimeFunctions.isoTime },
      { write: (line: string) => void output.write(line) },
    );
  }
  return pino({ level }, celeryLines(output));
}
