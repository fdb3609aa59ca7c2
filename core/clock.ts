/**
 * Injected time. The flashing core never reads the wall clock directly: on hardware it is
 * given {@link realClock}; on the emulator it is given a virtual clock that only moves when
 * somebody waits, so a job that takes minutes on a wire finishes in milliseconds yet reports
 * the duration it would really take.
 *
 * @module
 */

/** A source of time in milliseconds, and a way to wait on it. */
export interface Clock {
  /** Milliseconds since an arbitrary origin. */
  now(): number;
  /** Wait `ms` milliseconds of this clock's time. */
  sleep(ms: number): Promise<void>;
}

/** The wall clock (monotonic). */
export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
};

/**
 * A clock that advances only when told to. `sleep` moves time forward at once; the virtual
 * wire moves it forward when the host waits for bytes.
 *
 * @example
 * ```ts
 * const clock = new VirtualClock();
 * await clock.sleep(250);
 * clock.now(); // 250
 * ```
 */
export class VirtualClock implements Clock {
  #now: number;
  /** A clock standing at `start` ms until advanced. */
  constructor(start = 0) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  sleep(ms: number): Promise<void> {
    this.advanceTo(this.#now + Math.max(0, ms));
    return Promise.resolve();
  }
  /** Move time forward to `t` (never backwards). */
  advanceTo(t: number): void {
    if (t > this.#now) this.#now = t;
  }
}
