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
