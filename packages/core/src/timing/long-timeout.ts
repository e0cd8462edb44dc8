/** Longest delay `setTimeout` honours: past it, Node fires at once (TimeoutOverflowWarning). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `fire` once `ms` milliseconds have passed, for any `ms` from 0 to `Infinity` (which
 * never fires). A delay past {@link MAX_TIMER_MS} (about 24.8 days) is armed in steps, since a
 * plain `setTimeout` would fire it at once. For result backends whose `waitForReady` accepts any
 * timeout the caller gives. Returns a function that cancels it.
 */
export function afterDelay(ms: number, fire: () => void): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = (remaining: number): void => {
    if (remaining === Number.POSITIVE_INFINITY) return;
    const step = Math.min(remaining, MAX_TIMER_MS);
    timer = setTimeout(() => (remaining > step ? arm(remaining - step) : fire()), step);
  };
  arm(Math.max(0, ms));
  return () => clearTimeout(timer);
}
