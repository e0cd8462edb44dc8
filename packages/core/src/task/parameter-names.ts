/**
 * Reads the parameter names of a function from its source, so keyword arguments sent by
 * Python callers (`kwargs={'a': 4}`) can be mapped onto positions. Destructured parameters have
 * no name and come back undefined; a rest parameter is reported by index.
 */
export function readParameterNames(fn: (...args: never[]) => unknown): {
  names: (string | undefined)[];
  restIndex?: number;
} {
  const source = Function.prototype.toString.call(fn);
  const open = source.indexOf('(');
  if (open < 0) {
    // A single-parameter arrow function without parentheses: `x => ...`.
    const arrow = /^\s*(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/.exec(source);
    return { names: arrow ? [arrow[1]] : [] };
  }
  const params = splitTopLevel(source, open + 1);
  const names: (string | undefined)[] = [];
  let restIndex: number | undefined;
  params.forEach((param, index) => {
    const text = stripComments(param).trim();
    if (text === '') return;
    const rest = text.startsWith('...');
    const match = /^(?:\.\.\.)?\s*([A-Za-z_$][\w$]*)/.exec(text);
    names.push(match ? match[1] : undefined);
    if (rest) restIndex = index;
  });
  return { names, restIndex };
}

/** Splits the parameter list starting at `start` (just after its `(`) on top-level commas. */
function splitTopLevel(source: string, start: number): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  let quote: string | undefined;
  for (let i = start; i < source.length; i += 1) {
    const ch = source[i]!;
    if (quote) {
      current += ch;
      if (ch === '\\') {
        current += source[i + 1] ?? '';
        i += 1;
      } else if (ch === quote) {
        quote = undefined;
      }
      continue;
    }
    if (ch === '"' || ch === "'" || ch === '`') {
      quote = ch;
      current += ch;
    } else if (ch === '(' || ch === '[' || ch === '{') {
      depth += 1;
      current += ch;
    } else if (ch === ')' || ch === ']' || ch === '}') {
      if (depth === 0) {
        parts.push(current);
        return parts;
      }
      depth -= 1;
      current += ch;
    } else if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
}
