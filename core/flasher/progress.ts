/**
 * Progress events for long operations, with a rate measured on the injected clock (so an
 * emulated job reports the rate a real wire would give).
 *
 * @module
 */

import type { Clock } from "../clock.ts";

/** Names of the long operations that report progress. */
export type ProgressOp = "read" | "backup" | "compare" | "erase" | "write" | "verify";

/** One progress report: `done` of `total` bytes. */
export interface ProgressEvent {
  /** The operation in progress. */
  op: ProgressOp;
  /** Bytes done so far. */
  done: number;
  /** Bytes in all. */
  total: number;
  /** Average rate since the operation started, once some time has passed. */
  bytesPerSec?: number;
}

/** Receives progress events. */
export type ProgressListener = (event: ProgressEvent) => void;

/**
 * Counts bytes of one operation and reports them.
 *
 * @example
 * ```ts
 * import { VirtualClock } from "../clock.ts";
 * const clock = new VirtualClock();
 * const meter = new ProgressMeter("read", 8192, clock, (e) => console.error(e.done));
 * meter.advance(4096); // reports 4096 of 8192
 * ```
 */
export class ProgressMeter {
  readonly op: ProgressOp;
  readonly total: number;
  #done = 0;
  #start: number;
  #clock: Clock;
  #listener?: ProgressListener;

  constructor(op: ProgressOp, total: number, clock: Clock, listener?: ProgressListener) {
    this.op = op;
    this.total = total;
    this.#clock = clock;
    this.#listener = listener;
    this.#start = clock.now();
    this.#emit();
  }

  /** Bytes reported so far. */
  get done(): number {
    return this.#done;
  }

  /** Add `bytes` to the count and report. */
  advance(bytes: number): void {
    this.#done = Math.min(this.total, this.#done + bytes);
    this.#emit();
  }

  /** Report the operation complete. */
  finish(): void {
    if (this.#done === this.total) return;
    this.#done = this.total;
    this.#emit();
  }

  #emit(): void {
    if (!this.#listener) return;
    const elapsed = this.#clock.now() - this.#start;
    const event: ProgressEvent = { op: this.op, done: this.#done, total: this.total };
    if (elapsed > 0) event.bytesPerSec = (this.#done * 1000) / elapsed;
    this.#listener(event);
  }
}
