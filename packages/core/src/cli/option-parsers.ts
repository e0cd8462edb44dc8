import { InvalidArgumentError } from 'commander';

/** Parses a command-line option that must be an integer from 1. */
export function positiveInteger(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/** Parses a command-line option that must be an integer from 0. */
export function nonNegativeInteger(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be an integer from 0');
  return n;
}

/** Parses a TCP port; 0 lets the system pick a free one. */
export function port(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) {
    throw new InvalidArgumentError('must be a TCP port (0 picks a free one)');
  }
  return n;
}

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
