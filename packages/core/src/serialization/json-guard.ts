import { MAX_SEND_DEPTH } from '../defaults';
import { SerializationError } from '../errors';

/**
 * Refuses, before anything is published, values that JSON cannot carry faithfully: functions,
 * symbols, cycles, `undefined` in arrays (holes included), non-finite numbers, and
 * objects JSON would silently empty (Map, Set, Promise, RegExp, Error, binary buffers). An object
 * with a `toJSON()` method is judged by what that method returns, as `JSON.stringify` would send
 * it. The error names the path, e.g. `args[1].owner.callback`.
 */
export function assertSendable(value: unknown, path: string): void {
  walk(value, path, [], 0);
}

/**
 * What `JSON.stringify` would send for `object` in place of the object itself: the result of its
 * `toJSON()` (URL, Decimal, Luxon and users' value classes), or `object` when it has none. Dates
 * are left as they are: they go out as ISO strings either way, and the guard checks them.
 */
export function jsonReplacement(object: object): unknown {
  if (object instanceof Date) return object;
  const toJSON = (object as { toJSON?: unknown }).toJSON;
  return typeof toJSON === 'function' ? (toJSON as () => unknown).call(object) : object;
}

function walk(value: unknown, path: string, ancestors: object[], depth: number): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value))
        throw new SerializationError(path, `${value} is not a valid JSON number`);
      return;
    case 'undefined':
      return;
    case 'function':
      throw new SerializationError(path, 'a function cannot be sent; pass data, not code');
    case 'symbol':
      throw new SerializationError(path, 'a symbol cannot be sent');
    case 'bigint':
      // Written as the exact integer (stringifyCeleryJson); Python reads an int.
      return;
  }
  if (value === null) return;
  const object = value as object;
  if (depth >= MAX_SEND_DEPTH) {
    throw new SerializationError(path, `nests deeper than ${MAX_SEND_DEPTH} levels`);
  }
  if (ancestors.includes(object)) {
    throw new SerializationError(path, 'a circular reference cannot be sent');
  }
  if (object instanceof Date) {
    if (Number.isNaN(object.getTime()))
      throw new SerializationError(path, 'an invalid Date cannot be sent');
    return;
  }
  // Before toJSON: a Buffer's toJSON would send its bytes as an array of numbers.
  const refused = refusedKind(object);
  if (refused) throw new SerializationError(path, refused);
  let replacement: unknown;
  try {
    replacement = jsonReplacement(object);
  } catch (error) {
    throw new SerializationError(path, `its toJSON() threw: ${(error as Error).message}`);
  }
  if (replacement !== object) {
    // Judged as what JSON.stringify sends; its own toJSON is not called again, as in JSON.
    ancestors.push(object);
    walkReplacement(replacement, path, ancestors, depth);
    ancestors.pop();
    return;
  }
  walkObject(object, path, ancestors, depth);
}

function walkReplacement(value: unknown, path: string, ancestors: object[], depth: number): void {
  if (typeof value === 'object' && value !== null && !(value instanceof Date)) {
    if (ancestors.includes(value)) {
      throw new SerializationError(path, 'a circular reference cannot be sent');
    }
    const refused = refusedKind(value);
    if (refused) throw new SerializationError(path, refused);
    walkObject(value, path, ancestors, depth + 1);
  } else {
    walk(value, path, ancestors, depth + 1);
  }
}

/** Walks the items or entries of an object already checked by {@link refusedKind}. */
function walkObject(object: object, path: string, ancestors: object[], depth: number): void {
  ancestors.push(object);
  if (Array.isArray(object)) {
    // By index, not forEach: a hole is skipped by forEach and would arrive as null.
    for (let index = 0; index < object.length; index += 1) {
      const item: unknown = object[index];
      const itemPath = `${path}[${index}]`;
      if (item === undefined) {
        throw new SerializationError(
          itemPath,
          'undefined (or a hole) in an array would arrive as null; use null',
        );
      }
      walk(item, itemPath, ancestors, depth + 1);
    }
  } else {
    for (const [key, child] of Object.entries(object)) {
      walk(child, `${path}${propertyPath(key)}`, ancestors, depth + 1);
    }
  }
  ancestors.pop();
}

function refusedKind(object: object): string | undefined {
  if (object instanceof Map || object instanceof WeakMap) {
    return 'a Map would arrive as {}; send an object or an array of entries';
  }
  if (object instanceof Set || object instanceof WeakSet)
    return 'a Set would arrive as {}; send an array';
  if (object instanceof Promise) return 'a Promise cannot be sent; await it first';
  if (object instanceof RegExp) return 'a RegExp would arrive as {}; send its source as a string';
  if (object instanceof Error) {
    return 'an Error would arrive as {}; send its message, or a plain object of what matters';
  }
  if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) {
    return 'binary data cannot be sent as JSON; encode it (base64) as a string';
  }
  return undefined;
}

/** `.key`, or `["odd key"]` where the key is not an identifier. */
export function propertyPath(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}
