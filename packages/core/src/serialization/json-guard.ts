import { SerializationError } from '../errors';

/** Deepest nesting the guard walks before refusing a value. */
export const MAX_SEND_DEPTH = 100;

/**
 * Refuses, before anything is published, values that JSON cannot carry faithfully: functions,
 * symbols, BigInt, cycles, `undefined` in arrays, non-finite numbers, and objects JSON would
 * silently empty (Map, Set, Promise, RegExp, binary buffers). The error names the path, e.g.
 * `args[1].owner.callback`.
 */
export function assertSendable(value: unknown, path: string): void {
  walk(value, path, [], 0);
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
      throw new SerializationError(path, 'a BigInt cannot be sent as JSON; send it as a string');
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
  const refused = refusedKind(object);
  if (refused) throw new SerializationError(path, refused);

  ancestors.push(object);
  if (Array.isArray(object)) {
    object.forEach((item, index) => {
      const itemPath = `${path}[${index}]`;
      if (item === undefined) {
        throw new SerializationError(
          itemPath,
          'undefined in an array would arrive as null; use null',
        );
      }
      walk(item, itemPath, ancestors, depth + 1);
    });
  } else if (typeof (object as { toJSON?: unknown }).toJSON !== 'function') {
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
  if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) {
    return 'binary data cannot be sent as JSON; encode it (base64) as a string';
  }
  return undefined;
}

function propertyPath(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}
