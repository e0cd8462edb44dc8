import { LazyAbort } from '../../src/worker/lazy-abort';

describe('LazyAbort', () => {
  it('hands out an aborted signal with the reason when aborted before anyone asked for it', () => {
    const lever = new LazyAbort();
    const reason = new Error('soft time limit');
    lever.abort(reason);
    expect(lever.signal.aborted).toBe(true);
    expect(lever.signal.reason).toBe(reason);
  });

  it('keeps one signal, fires its listeners once, and keeps the first reason', () => {
    const lever = new LazyAbort();
    const signal = lever.signal;
    const seen: unknown[] = [];
    signal.addEventListener('abort', () => seen.push(signal.reason));
    lever.abort('first');
    lever.abort('second');
    expect(lever.signal).toBe(signal);
    expect(seen).toEqual(['first']);
    expect(signal.reason).toBe('first');
  });
});
