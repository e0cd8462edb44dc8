import { ConfigError } from '../errors';

/** Celery's `--loglevel` names, each with the pino level it maps to. */
const LEVELS = {
  debug: 'debug',
  info: 'info',
  warning: 'warn',
  warn: 'warn',
  error: 'error',
  critical: 'fatal',
  fatal: 'fatal',
} as const;

/** A pino level the worker log uses. */
export type LogLevel = (typeof LEVELS)[keyof typeof LEVELS];

/** The names `--loglevel` accepts, in order of severity. */
export const LOG_LEVEL_NAMES = ['debug', 'info', 'warning', 'error', 'critical'] as const;

/** Reads a `--loglevel` value (any case, Celery's names or pino's); ConfigError otherwise. */
export function parseLogLevel(name: string): LogLevel {
  const level = LEVELS[name.toLowerCase() as keyof typeof LEVELS];
  if (!level) {
    throw new ConfigError(`unknown log level '${name}': use one of ${LOG_LEVEL_NAMES.join(', ')}`);
  }
  return level;
}
