import { randomUUID } from 'node:crypto';
import { parseCeleryTimestamp } from './celery-time';

type Reviver = (key: string, value: unknown) => unknown;

/**
 * Parses JSON as Python writes it: what `JSON.parse` reads, and also
 * - integers outside JavaScript's safe range (beyond ±2^53 - 1), read exactly as `BigInt`:
 *   Python's integers have no size limit, and `JSON.parse` would round `2**64 + 1` silently;
 * - the bare tokens `NaN`, `Infinity` and `-Infinity`, which Python's json module (so kombu and
 *   Celery's result backends) writes by default for those floats, read as the JavaScript
 *   numbers: a `tasks.add(1e308, 1e308)` run by Celery stores `"result": Infinity`, and
 *   `JSON.parse` refuses the whole document;
 * - the `{"__type__": ..., "__value__": ...}` objects kombu 5.3 and later write for Python types
 *   JSON lacks: `datetime` becomes a `Date`; `date`, `time` and `decimal` their ISO or decimal
 *   string; `uuid` its canonical string; `bytes` and `base64` a `Buffer`. Other tags stay as
 *   they are.
 * Throws a `SyntaxError` for anything else that is not JSON.
 */
export function parseCeleryJson(text: string): unknown {
  // The tag check is a substring test, so documents without tags parse at JSON.parse's speed.
  const reviver = text.includes('"__type__"') ? reviveKombuType : undefined;
  // An unsafe integer has at least 16 digits; a document without such a run is JSON.parse's.
  if (!LONG_DIGIT_RUN.test(text)) {
    try {
      return JSON.parse(text, reviver);
    } catch (error) {
      return parseMarked(text, reviver, error);
    }
  }
  return parseMarked(text, reviver, undefined);
}

/**
 * JSON text for a value that may hold `BigInt`s, each written as the exact integer it is (what
 * Python reads as an `int`); otherwise what `JSON.stringify` writes.
 */
export function stringifyCeleryJson(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    // JSON.stringify throws a TypeError for a BigInt: only then is the slower path taken.
    if (!(error instanceof TypeError) || !/BigInt/i.test(error.message)) throw error;
  }
  const nonce = randomUUID();
  const text = JSON.stringify(value, (_key, item: unknown) =>
    typeof item === 'bigint' ? `${nonce}:${item.toString()}` : item,
  );
  return text.replace(new RegExp(`"${nonce}:(-?\\d+)"`, 'g'), '$1');
}

const NON_FINITE = new Map<string, number>([
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
]);

const LONG_DIGIT_RUN = /\d{16}/;

/** A JSON string, one of Python's non-finite tokens, or a number. */
const TOKEN = /"[^"\\]*(?:\\.[^"\\]*)*"|-?Infinity|NaN|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;

/**
 * Parses `text` with its non-finite tokens and unsafe integers first made marked strings, then
 * revived as the numbers they stand for. Throws `error` (JSON.parse's own) when there were none.
 */
function parseMarked(text: string, reviver: Reviver | undefined, error: unknown): unknown {
  const nonce = randomUUID();
  let found = false;
  const marked = text.replace(TOKEN, (token) => {
    if (token.startsWith('"')) return token;
    if (NON_FINITE.has(token) || (/^-?\d+$/.test(token) && !Number.isSafeInteger(Number(token)))) {
      found = true;
      return `"${nonce}:${token}"`;
    }
    return token;
  });
  if (!found) {
    if (error !== undefined) throw error;
    return JSON.parse(text, reviver);
  }
  const prefix = `${nonce}:`;
  return JSON.parse(marked, (key, value: unknown) => {
    if (typeof value === 'string' && value.startsWith(prefix)) {
      const token = value.slice(prefix.length);
      return NON_FINITE.get(token) ?? BigInt(token);
    }
    return reviver ? reviver(key, value) : value;
  });
}

/** kombu's tagged values (kombu/utils/json.py, `_register_default_types`), as JavaScript values. */
const reviveKombuType: Reviver = (_key, value) => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (keys.length !== 2 || !('__type__' in value) || !('__value__' in value)) return value;
  const { __type__: type, __value__: tagged } = value as { __type__: unknown; __value__: unknown };
  switch (type) {
    case 'datetime':
      return (typeof tagged === 'string' && parseCeleryTimestamp(tagged)) || value;
    case 'date':
    case 'time':
    case 'decimal':
      return typeof tagged === 'string' ? tagged : value;
    case 'uuid': {
      const hex = (tagged as { hex?: unknown } | null)?.hex;
      return typeof hex === 'string' && /^[0-9a-f]{32}$/i.test(hex)
        ? hex.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5').toLowerCase()
        : value;
    }
    case 'bytes':
      return typeof tagged === 'string' ? Buffer.from(tagged, 'utf8') : value;
    case 'base64':
      return typeof tagged === 'string' ? Buffer.from(tagged, 'base64') : value;
    default:
      return value;
  }
};
