/**
 * The device side of a UART: what the virtual wire, the PTY server and the TCP server talk
 * to. A device is reactive and timed: it is handed bytes with the time their last bit
 * arrived, and answers with chunks of bytes, each stamped with the time its first bit may
 * leave and the baud rate it leaves at.
 *
 * @module
 */

/** Bytes the device transmits. */
export interface TxChunk {
  /** Earliest time (ms) the first byte may start on the wire. */
  at: number;
  /** Baud rate the chunk is sent at. */
  baud: number;
  /** The bytes. */
  data: Uint8Array;
}

/** A device behind a UART. */
export interface UartDevice {
  /** The device's UART baud rate at time `t` (it changes after SetBaudRate's delay). */
  baudAt(t: number): number;
  /**
   * Bytes the device's UART decoded; `now` is when the last of them finished arriving.
   * Returns what the device sends in response (possibly nothing).
   */
  receive(data: Uint8Array, now: number): TxChunk[];
  /** A reset: CEN pulled low and released at `now` (power-on, DTR/RTS pulse, port open). */
  reset(now: number): void;
  /** Modem lines as driven by the host; a device wired for auto-reset reacts to them. */
  signals(lines: { dtr: boolean; rts: boolean }, now: number): void;
  /**
   * What the device sends on its own, unprompted, by time `until` if the host sends nothing
   * before then (a booting chip's first log line). Optional: most devices only answer.
   */
  spontaneous?(until: number): TxChunk[];
}
