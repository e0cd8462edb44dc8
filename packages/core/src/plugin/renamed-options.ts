import { ConfigError } from '../errors';

const warned = new Set<string>();

/**
 * The value of an option that was renamed: `options[current]`, or else the value under its old
 * name, which still works for one minor version and emits a `DeprecationWarning` (once per
 * process and name). Giving both is a {@link ConfigError}.
 *
 * @param owner the class whose option it is, for the messages
 */
export function renamedOption<O extends object, K extends keyof O>(
  owner: string,
  options: O,
  current: K,
  old: string,
): O[K] | undefined {
  const record = options as Record<string, unknown>;
  const oldValue = record[old];
  if (oldValue === undefined) return options[current];
  if (options[current] !== undefined) {
    throw new ConfigError(
      `${owner}: give \`${String(current)}\` only (\`${old}\` is its old name)`,
    );
  }
  const key = `${owner}.${old}`;
  if (!warned.has(key)) {
    warned.add(key);
    process.emitWarning(
      `${owner}: the option \`${old}\` is now \`${String(current)}\`; the old name will be removed in the next minor version`,
      { type: 'DeprecationWarning', code: 'CONVEYOR_DEP_OPTION' },
    );
  }
  return oldValue as O[K];
}
