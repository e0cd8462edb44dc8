import { InvalidArgumentError } from 'commander';
import { describeNumberRule, keepsNumberRule, type NumberRule } from '../plugin/option-checks';

/**
 * A parser of a command-line number that must keep `rule`. Its refusal says what the rule allows
 * in the words the API's `ConfigError` uses, or `description` when given.
 */
export function numberArgument(
  rule: NumberRule,
  description = describeNumberRule(rule),
): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!keepsNumberRule(n, rule)) throw new InvalidArgumentError(`must be ${description}`);
    return n;
  };
}

/** Parses a command-line option that must be an integer from 1. */
export const positiveInteger = numberArgument({ integer: true, min: 1 });

/** Parses a command-line option that must be an integer from 0. */
export const nonNegativeInteger = numberArgument({ integer: true, min: 0 });

/** Parses a TCP port; 0 lets the system pick a free one. */
export const port = numberArgument(
  { integer: true, min: 0, max: 65_535 },
  'a TCP port (0 picks a free one)',
);

/** Parses a comma-separated list of names (`-Q a,b`, `-d node1,node2`). */
export function commaList(text: string): string[] {
  const names = text
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  if (names.length === 0) throw new InvalidArgumentError('must name at least one');
  return names;
}

/** Parses a number of seconds (fractions allowed) into milliseconds. */
export function seconds(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number of seconds');
  return Math.round(n * 1000);
}
