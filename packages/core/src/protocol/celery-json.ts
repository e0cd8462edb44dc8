import { randomUUID } from 'node:crypto';
import { parseCeleryTimestamp } from './celery-time';

type Reviver = (key: string, value: unknown) => unknown;

/**
 * Parses JSON as Python writes it: what `JSON.parse` reads, and also
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
  try {
    return JSON.parse(text, reviver);
  } catch (error) {
    const nonce = randomUUID();
    const marked = markNonFiniteTokens(text, nonce);
    if (marked === undefined) throw error;
    const numbers = new Map<string, number>([
      [`${nonce}:NaN`, Number.NaN],
      [`${nonce}:Infinity`, Number.POSITIVE_INFINITY],
      [`${nonce}:-Infinity`, Number.NEGATIVE_INFINITY],
    ]);
    return JSON.parse(marked, (key, value: unknown) => {
      if (typeof value === 'string' && numbers.has(value)) return numbers.get(value);
      return reviver ? reviver(key, value) : value;
    });
  }
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

const TOKENS = ['-Infinity', 'Infinity', 'NaN'];

/** `text` with each non-finite token outside strings made a marked string; undefined if none. */
function markNonFiniteTokens(text: string, nonce: string): string | undefined {
  let out = '';
  let found = false;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i]!;
    if (inString) {
      out += c;
      if (c === '\\') {
        out += text[i + 1] ?? '';
        i += 1;
      } else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      out += c;
      continue;
    }
    const token = TOKENS.find((t) => text.startsWith(t, i));
    if (token) {
      out += JSON.stringify(`${nonce}:${token}`);
      i += token.length - 1;
      found = true;
      continue;
    }
    out += c;
  }
  return found ? out : undefined;
}
