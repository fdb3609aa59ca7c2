/**
 * One client's session with an emulated {@link UartDevice}, whatever carries it (a PTY, a TCP
 * socket, an RFC 2217 connection: a {@link Channel}): requests go to the device at the time
 * their bytes finish arriving, replies leave paced at the line rate (`pace: "wire"`) or at once
 * with the device's clock run ahead (`pace: "none"`), and bytes sent at a rate the other side
 * does not listen at are garbled as a UART would garble them. `serve.ts` opens the transports.
 *
 * @module
 */

import { wireMs } from "../core/timing.ts";
import { misheard } from "./baud_mismatch.ts";
import type { TxChunk, UartDevice } from "./uart_device.ts";
import { baudsMatch } from "./wire.ts";

/** How replies are timed: "wire" = real time at the line rate; "none" = at once. */
export type Pace = "wire" | "none";

/** Longest stretch of a paced reply written in one go (ms of wire time). */
const SLICE_MS = 4;
/** Longest a baud-switch reply is held back with `pace: "none"`. */
const MAX_SWITCH_HOLD_MS = 1000;

/** What a channel may do to its session beyond passing bytes. */
export interface SessionControl {
  /** Drop the device's replies not yet delivered (a purge of the bridge's receive buffer). */
  purgeOutput(): void;
}

/** One client's connection as a session sees it. */
export interface Channel {
  /** The next bytes from the client; `null` once it has gone. */
  receive(): Promise<Uint8Array | null>;
  /** Deliver bytes; `false` when the client has gone. */
  send(data: Uint8Array): Promise<boolean>;
  /** The client's current baud rate, where the transport shows it. */
  clientBaud(): number | undefined;
  /** Called once when the session starts, with what the channel may do to it. */
  attach?(control: SessionControl): void;
}

/**
 * The device's time: real milliseconds since start, plus however far `pace: "none"` has run
 * ahead. Time keeps flowing after a jump, so a chip reset while the clock is ahead still leaves
 * its reset state and opens its boot window (a frozen clock kept it in reset for good).
 */
export class ServerClock {
  #origin = performance.now();
  #ahead = 0;

  real(): number {
    return performance.now() - this.#origin;
  }

  now(): number {
    return this.real() + this.#ahead;
  }

  advanceTo(t: number): void {
    const lead = t - this.real();
    if (lead > this.#ahead) this.#ahead = lead;
  }
}

/** setTimeout-based sleeps that can all be ended at once (no timer outlives a session). */
class Sleeps {
  #pending = new Map<ReturnType<typeof setTimeout>, () => void>();

  sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const id = setTimeout(() => {
        this.#pending.delete(id);
        resolve();
      }, ms);
      this.#pending.set(id, resolve);
    });
  }

  cancelAll(): void {
    for (const [id, resolve] of this.#pending) {
      clearTimeout(id);
      resolve();
    }
    this.#pending.clear();
  }
}

interface Queued {
  chunk: TxChunk;
  /** Device time the request that produced it finished arriving. */
  heardAt: number;
}

/** Run one client session until the client goes away (the chip is reset as it starts). */
export async function runSession(
  device: UartDevice,
  channel: Channel,
  clock: ServerClock,
  pace: Pace,
  log: (line: string) => void,
): Promise<void> {
  device.reset(clock.now());
  const queue: Queued[] = [];
  const sleeps = new Sleeps();
  let ended = false;
  const signal = { wake: (): void => {} };
  let rxFree = 0;
  channel.attach?.({ purgeOutput: () => void (queue.length = 0) });

  const mismatches = new Map<string, string>();
  const garbleFor = (data: Uint8Array, txBaud: number, rxBaud: number | undefined, direction: string) => {
    if (rxBaud === undefined || rxBaud <= 0 || baudsMatch(txBaud, rxBaud)) {
      mismatches.delete(direction);
      return data;
    }
    const line = `${direction}: sent at ${txBaud} baud, heard at ${rxBaud} baud; bytes garbled`;
    if (mismatches.get(direction) !== line) log(line);
    mismatches.set(direction, line);
    return misheard(data, txBaud, rxBaud);
  };

  const transmit = async () => {
    let wireFree = 0;
    let lastBaud = device.baudAt(clock.now());
    while (!ended) {
      const next = queue.shift();
      if (!next) {
        await new Promise<void>((resolve) => (signal.wake = resolve));
        continue;
      }
      const { chunk, heardAt } = next;
      const duration = wireMs(chunk.data.length, chunk.baud);
      if (pace === "wire") {
        const start = Math.max(chunk.at, wireFree);
        wireFree = start + duration;
        await sleeps.sleep(start - clock.real());
        if (ended) break;
        const data = garbleFor(chunk.data, chunk.baud, channel.clientBaud(), "chip → client");
        const slice = Math.max(1, Math.floor((data.length * SLICE_MS) / Math.max(duration, 1e-9)));
        // a slice leaves once its last byte is on the wire: a client cannot answer a reply before
        // it has ended (a loader that drops bytes while busy would lose that answer)
        for (let at = 0; at < data.length && !ended; at += slice) {
          const sent = Math.min(at + slice, data.length);
          await sleeps.sleep(start + (duration * sent) / data.length - clock.real());
          if (!ended) await channel.send(data.subarray(at, sent));
        }
      } else {
        if (chunk.baud !== lastBaud) {
          await sleeps.sleep(Math.min(MAX_SWITCH_HOLD_MS, chunk.at - heardAt));
          if (ended) break;
        }
        clock.advanceTo(chunk.at + duration);
        await channel.send(garbleFor(chunk.data, chunk.baud, channel.clientBaud(), "chip → client"));
      }
      lastBaud = chunk.baud;
    }
  };

  const sender = transmit();
  try {
    for (let data = await channel.receive(); data; data = await channel.receive()) {
      const clientBaud = channel.clientBaud();
      const t = clock.now();
      // bytes take their wire time in both paces: a loader that drops what arrives while it is
      // busy must not see a request begin before the reply that preceded it had ended
      const end = Math.max(t, rxFree) + wireMs(data.length, clientBaud || device.baudAt(t));
      if (pace === "none") clock.advanceTo(end);
      rxFree = end;
      const heard = clientBaud === undefined
        ? data
        : garbleFor(data, clientBaud, device.baudAt(end), "client → chip");
      for (const chunk of device.receive(heard, end)) {
        if (chunk.data.length) queue.push({ chunk, heardAt: end });
      }
      signal.wake();
    }
  } finally {
    ended = true;
    queue.length = 0;
    signal.wake();
    sleeps.cancelAll();
    await sender;
  }
}
