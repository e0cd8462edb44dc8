import { ConfigError } from '../errors';

const warned = new Set<string>();

/**
 * Emits a `DeprecationWarning` (code `CONVEYOR_DEP_OPTION`) saying that `owner`'s option `old`
 * is deprecated and what to use instead; once per process and option.
 */
export function warnDeprecatedOption(owner: string, old: string, instead: string): void {
  const key = `${owner}.${old}`;
  if (warned.has(key)) return;
  warned.add(key);
  process.emitWarning(
    `${owner}: the option \`${old}\` is deprecated and will be removed in the next minor version; ${instead}`,
    { type: 'DeprecationWarning', code: 'CONVEYOR_DEP_OPTION' },
  );
}

/**
 * The value of an option that was renamed: `options[current]`, or else the value under its old
 * name, which still works for one minor version and emits a `DeprecationWarning` (see
 * {@link warnDeprecatedOption}). Giving both is a {@link ConfigError}.
 *
 * @param owner the class whose option it is, for the messages
 */
export function renamedOption<O extends object, K extends keyof O & string>(
  owner: string,
  options: O,
  current: K,
  old: string,
): O[K] | undefined {
  const oldValue = (options as Record<string, unknown>)[old];
  if (oldValue === undefined) return options[current];
  if (options[current] !== undefined) {
    throw new ConfigError(`${owner}: give \`${current}\` only (\`${old}\` is its old name)`);
  }
  warnDeprecatedOption(owner, old, `use \`${current}\``);
  return oldValue as O[K];
}
