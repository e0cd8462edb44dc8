import type { CommandIo, OutputStream } from '../command-io';

const CODES = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  cyan: [36, 39],
} as const;

/** A text style of the human output. */
export type Style = keyof typeof CODES;

/** Applies styles, or nothing when colours are off. */
export type Painter = (text: string, style: Style | undefined) => string;

/**
 * Colours only on a terminal, and never with `NO_COLOR` set or `TERM=dumb`; `FORCE_COLOR` (not
 * `0`) turns them on anywhere, as most command-line tools agree.
 */
export function colorsEnabled(stream: OutputStream, env: CommandIo['env']): boolean {
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return stream.isTTY === true && env.TERM !== 'dumb';
}

/** A painter for `stream`: ANSI styles on a terminal, plain text elsewhere. */
export function painterFor(stream: OutputStream, env: CommandIo['env']): Painter {
  if (!colorsEnabled(stream, env)) return (text) => text;
  return (text, style) => {
    if (!style) return text;
    const [on, off] = CODES[style];
    return `\u001b[${on}m${text}\u001b[${off}m`;
  };
}
