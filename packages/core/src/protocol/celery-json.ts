import { randomUUID } from 'node:crypto';

/**
 * Parses JSON as Python writes it: what `JSON.parse` reads, and also the bare tokens `NaN`,
 * `Infinity` and `-Infinity`, which Python's json module (so kombu and Celery's result
 * backends) writes by default for those floats. They are read as the JavaScript numbers. A
 * `tasks.add(1e308, 1e308)` run by Celery stores `"result": Infinity`; `JSON.parse` refuses the
 * whole document. Throws a `SyntaxError` for anything else that is not JSON.
 */
export function parseCeleryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const nonce = randomUUID();
    const marked = markNonFiniteTokens(text, nonce);
    if (marked === undefined) throw error;
    const numbers = new Map<string, number>([
      [`${nonce}:NaN`, Number.NaN],
      [`${nonce}:Infinity`, Number.POSITIVE_INFINITY],
      [`${nonce}:-Infinity`, Number.NEGATIVE_INFINITY],
    ]);
    return JSON.parse(marked, (_key, value: unknown) =>
      typeof value === 'string' && numbers.has(value) ? numbers.get(value) : value,
    );
  }
}

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
