/**
 * Matching an RFC 2217 server's confirmations to the commands that asked for them: a command
 * waits under its key, the confirmation settles the oldest waiter of that key, and a waiter
 * that hears nothing in time gets null (servers that do not confirm are tolerated).
 *
 * @module
 */

import { COM_PORT, CONTROL } from "./telnet.ts";

/** Which answer a command waits for: SET-CONTROL answers by line (flow, BREAK, DTR, RTS). */
export function ackKey(code: number, value: Uint8Array | number[]): string {
  if (code !== COM_PORT.SET_CONTROL) return String(code);
  const v = value[0] ?? 0;
  const group = v < CONTROL.BREAK_REQUEST || v > 16
    ? "flow"
    : v < CONTROL.DTR_REQUEST
    ? "break"
    : v < CONTROL.RTS_REQUEST
    ? "dtr"
    : v < CONTROL.INBOUND_FLOW_REQUEST
    ? "rts"
    : "inflow";
  return `${code}:${group}`;
}

interface Waiter {
  settle(value: Uint8Array | null | "closed"): void;
}

/** Commands waiting for their confirmation, by {@link ackKey}. */
export class AckWaiters {
  readonly #ms: number;
  readonly #waiters = new Map<string, Waiter[]>();

  /** Waiters give up (null) after `ms`. */
  constructor(ms: number) {
    this.#ms = ms;
  }

  /** The confirmation of `key`: its value, null when none came in time, "closed" when the link ended. */
  expect(key: string): Promise<Uint8Array | null | "closed"> {
    return new Promise((resolve) => {
      const list = this.#waiters.get(key) ?? [];
      this.#waiters.set(key, list);
      const w: Waiter = {
        settle: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
      };
      const timer = setTimeout(() => {
        const at = list.indexOf(w);
        if (at >= 0) list.splice(at, 1);
        resolve(null);
      }, this.#ms);
      list.push(w);
    });
  }

  /** A confirmation arrived: the oldest waiter of `key` gets it. */
  settle(key: string, value: Uint8Array): void {
    this.#waiters.get(key)?.shift()?.settle(value);
  }

  /** The link ended: every waiter learns it. */
  closeAll(): void {
    for (const list of this.#waiters.values()) for (const w of [...list]) w.settle("closed");
    this.#waiters.clear();
  }
}
