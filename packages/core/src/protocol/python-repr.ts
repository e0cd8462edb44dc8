/**
 * Python-style reprs for the `argsrepr` and `kwargsrepr` headers, so that Celery's tools
 * (Flower, `celery events`, worker logs) show Conveyor tasks the way they show Python ones.
 */

/** Celery truncates argument reprs to this many characters (its `argsrepr_maxsize`). */
export const REPR_MAX_LENGTH = 1024;

export function reprArgs(args: readonly unknown[]): string {
  const inner = args.map(repr).join(', ');
  return truncate(args.length === 1 ? `(${inner},)` : `(${inner})`);
}

export function reprKwargs(kwargs: Record<string, unknown>): string {
  return truncate(repr(kwargs));
}

function truncate(text: string): string {
  return text.length > REPR_MAX_LENGTH ? `${text.slice(0, REPR_MAX_LENGTH - 3)}...` : text;
}

/** Python's repr of a JSON value. */
export function repr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : pyFloat(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return pyString(value);
  if (Array.isArray(value)) return `[${value.map(repr).join(', ')}]`;
  if (value instanceof Date) return pyString(value.toISOString());
  if (typeof value === 'object') {
    const items = Object.entries(value as Record<string, unknown>).map(
      ([k, v]) => `${pyString(k)}: ${repr(v)}`,
    );
    return `{${items.join(', ')}}`;
  }
  return pyString(String(value));
}

function pyFloat(value: number): string {
  const text = String(value);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

function pyString(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = '';
  for (const ch of text) {
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch < ' ') out += `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${quote}${out}${quote}`;
}
