/**
 * Received bytes waiting to be read, as the chunks they arrived in: the receive queue of the
 * socket links (`tcp://`, `rfc2217://`). A read takes at most one chunk, or the front of one.
 *
 * @module
 */

/** A FIFO of received chunks. */
export class ChunkQueue {
  #chunks: Uint8Array[] = [];

  /** Whether nothing is waiting. */
  get empty(): boolean {
    return this.#chunks.length === 0;
  }

  /** Queue a received chunk (kept as given: the caller hands over its own copy). */
  push(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
  }

  /** Up to `max` bytes from the front: the first chunk, or its first `max` bytes. */
  take(max: number): Uint8Array {
    const first = this.#chunks[0];
    if (first.length > max) {
      this.#chunks[0] = first.subarray(max);
      return first.slice(0, max);
    }
    this.#chunks.shift();
    return first;
  }

  /** Drop everything waiting. */
  clear(): void {
    this.#chunks = [];
  }
}
