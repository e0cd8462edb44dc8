/**
 * A Lamport clock, as kombu's: every event and control message carries its value (`clock`), and
 * whoever receives one moves its own clock past it, so events from different hosts can be put
 * in causal order without trusting their wall clocks.
 */
export class LamportClock {
  private current = 0;

  /** The current value. */
  get value(): number {
    return this.current;
  }

  /** Ticks for something this process sends, and returns the new value. */
  forward(): number {
    this.current += 1;
    return this.current;
  }

  /** Moves past a value received from elsewhere; returns the new value. */
  adjust(other: unknown): number {
    if (typeof other === 'number' && Number.isFinite(other)) {
      this.current = Math.max(this.current, Math.trunc(other)) + 1;
    }
    return this.current;
  }
}
