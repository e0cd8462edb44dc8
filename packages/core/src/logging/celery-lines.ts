/** Celery's level names for pino's level numbers. */
const LEVEL_NAMES: Record<number, string> = {
  10: 'DEBUG',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARNING',
  50: 'ERROR',
  60: 'CRITICAL',
};

/** pino's level number of `error`. */
const ERROR = 50;

/** What a pino record carries that a text line shows. */
interface LogRecord {
  level: number;
  time: number;
  msg?: string;
  err?: { stack?: string };
}

/** Where text lines go: a stream such as `process.stdout`. */
export interface TextOutput {
  write(text: string): unknown;
}

/**
 * A pino destination that prints each record as Celery's worker prints its log,
 * `[2026-12-06 10:00:00,123: INFO/MainProcess] Task math.add[…] received`, followed by the
 * error's stack when the record has one. Synchronous, so nothing is lost when a signal ends
 * the process.
 */
export function celeryLines(output: TextOutput): { write(line: string): void } {
  return {
    write(line: string): void {
      const record = JSON.parse(line) as LogRecord;
      const level = LEVEL_NAMES[record.level] ?? String(record.level);
      // Failures show their stack, as Celery's traceback; a retry's or a warning's error does not.
      const stack = record.level >= ERROR && record.err?.stack ? `\n${record.err.stack}` : '';
      output.write(
        `[${localTime(new Date(record.time))}: ${level}/MainProcess] ${record.msg ?? ''}${stack}\n`,
      );
    },
  };
}

/** `2026-12-06 10:00:00,123` in local time, Python logging's default format. */
function localTime(date: Date): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ` +
    `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())},` +
    String(date.getMilliseconds()).padStart(3, '0')
  );
}
