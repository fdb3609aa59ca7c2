/**
 * Streaming frame parsers for both directions. Feed bytes in any chunking; pull whole frames.
 * Garbage between frames is skipped by resynchronising on the frame preamble.
 *
 * @module
 */

import type { ReplyFrame, RequestFrame } from "./codec.ts";

/** Longest long-frame length field we believe (a 4 KiB write plus headroom). */
const MAX_LONG_LEN = 0x1100;

/** Longest request frame a loader's parser takes in (`01 E0 FC FF F4`, LEN16, then LEN bytes). */
export const MAX_REQUEST_FRAME = 7 + MAX_LONG_LEN;

/** A growable byte queue with cheap consumption from the front. */
class ByteQueue {
  #buf = new Uint8Array(8192);
  #start = 0;
  #end = 0;
  get length(): number {
    return this.#end - this.#start;
  }
  at(i: number): number {
    return this.#buf[this.#start + i];
  }
  push(data: Uint8Array): void {
    if (this.#end + data.length > this.#buf.length) {
      const live = this.length;
      const cap = Math.max(this.#buf.length, (live + data.length) * 2);
      const next = cap === this.#buf.length ? this.#buf : new Uint8Array(cap);
      next.set(this.#buf.subarray(this.#start, this.#end), 0);
      this.#buf = next;
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(data, this.#end);
    this.#end += data.length;
  }
  /** Index of the next occurrence of `a b` at or after `from`, or -1. */
  indexOf2(a: number, b: number, from = 0): number {
    for (let i = this.#start + from; i + 1 < this.#end; i++) {
      if (this.#buf[i] === a && this.#buf[i + 1] === b) return i - this.#start;
    }
    return -1;
  }
  take(n: number): Uint8Array {
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.drop(n);
    return out;
  }
  drop(n: number): void {
    this.#start += Math.min(n, this.length);
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }
}

/**
 * Host-side parser of chip replies. Resynchronises on `04 0E`, verifies the `01 E0 FC`
 * (and `F4`) markers, and yields whole frames regardless of how the bytes were chunked.
 *
 * @example
 * ```ts
 * const p = new ReplyParser();
 * p.push(Uint8Array.of(0xaa, 0x04, 0x0e, 0x05, 0x01));
 * p.push(Uint8Array.of(0xe0, 0xfc, 0x01, 0x00));
 * p.next(); // { kind: "short", code: 1, payload: [0] }
 * ```
 */
export class ReplyParser {
  #q = new ByteQueue();
  /** Bytes discarded as garbage so far. */
  skipped = 0;

  /** Add received bytes. */
  push(data: Uint8Array): void {
    this.#q.push(data);
  }

  /** Bytes held but not yet part of a complete frame. */
  get pending(): number {
    return this.#q.length;
  }

  /** Forget everything held. */
  reset(): void {
    this.skipped += this.#q.length;
    this.#q.drop(this.#q.length);
  }

  /** The next complete frame, or `undefined` if more bytes are needed. */
  next(): ReplyFrame | undefined {
    const q = this.#q;
    for (;;) {
      const at = q.indexOf2(0x04, 0x0e);
      if (at < 0) {
        // keep a trailing 0x04: it may be the start of a preamble split across chunks
        const keep = q.length > 0 && q.at(q.length - 1) === 0x04 ? 1 : 0;
        this.skipped += q.length - keep;
        q.drop(q.length - keep);
        return undefined;
      }
      if (at > 0) {
        this.skipped += at;
        q.drop(at);
      }
      if (q.length < 3) return undefined;
      const len = q.at(2);
      if (len !== 0xff) {
        if (len < 4) {
          this.#slip();
          continue;
        }
        const need = Math.min(q.length, 6);
        if (!this.#marks(3, [0x01, 0xe0, 0xfc], need)) {
          this.#slip();
          continue;
        }
        if (q.length < 3 + len) return undefined;
        const raw = q.take(3 + len);
        return { kind: "short", code: raw[6], payload: raw.subarray(7), raw };
      }
      if (!this.#marks(3, [0x01, 0xe0, 0xfc, 0xf4], Math.min(q.length, 7))) {
        this.#slip();
        continue;
      }
      if (q.length < 9) return undefined;
      const llen = q.at(7) | (q.at(8) << 8);
      if (llen < 2 || llen > MAX_LONG_LEN) {
        this.#slip();
        continue;
      }
      if (q.length < 9 + llen) return undefined;
      const raw = q.take(9 + llen);
      return { kind: "long", code: raw[9], status: raw[10], payload: raw.subarray(11), raw };
    }
  }

  /** Compare the bytes already present at `offset` with `bytes` (up to index `upto`). */
  #marks(offset: number, bytes: number[], upto: number): boolean {
    for (let i = 0; i < bytes.length && offset + i < upto; i++) {
      if (this.#q.at(offset + i) !== bytes[i]) return false;
    }
    return true;
  }

  #slip(): void {
    this.skipped += 1;
    this.#q.drop(1);
  }
}

/**
 * Chip-side parser of host requests: skips anything until `01 E0 FC` (ASCII `reboot\r\n`,
 * line noise), then reads a short or long (`FF F4`) frame.
 */
export class RequestParser {
  #q = new ByteQueue();
  /** Bytes discarded as garbage so far. */
  skipped = 0;

  /** Add received bytes. */
  push(data: Uint8Array): void {
    this.#q.push(data);
  }

  /** Bytes held but not yet part of a complete frame. */
  get pending(): number {
    return this.#q.length;
  }

  /** Bytes currently held (for recognising ASCII commands such as `reboot`). */
  peekAll(): Uint8Array {
    const n = this.#q.length;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.#q.at(i);
    return out;
  }

  /** Forget everything held. */
  reset(): void {
    this.skipped += this.#q.length;
    this.#q.drop(this.#q.length);
  }

  /** The next complete request, or `undefined` if more bytes are needed. */
  next(): RequestFrame | undefined {
    const q = this.#q;
    for (;;) {
      let at = -1;
      for (let i = 0; i + 2 < q.length + 0; i++) {
        if (q.at(i) === 0x01 && q.at(i + 1) === 0xe0 && q.at(i + 2) === 0xfc) {
          at = i;
          break;
        }
      }
      if (at < 0) {
        // keep a possible partial preamble at the end
        let keep = 0;
        if (q.length >= 1 && q.at(q.length - 1) === 0x01) keep = 1;
        if (q.length >= 2 && q.at(q.length - 2) === 0x01 && q.at(q.length - 1) === 0xe0) keep = 2;
        this.skipped += q.length - keep;
        q.drop(q.length - keep);
        return undefined;
      }
      if (at > 0) {
        this.skipped += at;
        q.drop(at);
      }
      if (q.length < 5) return undefined;
      const len = q.at(3);
      if (len !== 0xff) {
        if (len < 1) {
          this.skipped += 1;
          q.drop(1);
          continue;
        }
        if (q.length < 4 + len) return undefined;
        const raw = q.take(4 + len);
        return { kind: "short", code: raw[4], payload: raw.slice(5) };
      }
      if (q.at(4) !== 0xf4) {
        this.skipped += 1;
        q.drop(1);
        continue;
      }
      if (q.length < 8) return undefined;
      const llen = q.at(5) | (q.at(6) << 8);
      if (llen < 1 || llen > MAX_LONG_LEN) {
        this.skipped += 1;
        q.drop(1);
        continue;
      }
      if (q.length < 7 + llen) return undefined;
      const raw = q.take(7 + llen);
      return { kind: "long", code: raw[7], payload: raw.slice(8) };
    }
  }
}
