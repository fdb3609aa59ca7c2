/**
 * Getting a chip to talk: the link-check loop (docs/uart.md §3), running the reset strategies
 * (`reset.ts`) on their schedule.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import type { ByteLink } from "../io/link.ts";
import { UartClient, type WireEvent } from "./client.ts";
import type { SessionEvent } from "./events.ts";
import { DEFAULT_RESET_STRATEGIES, type ResetStrategy, runResetStrategy } from "./reset.ts";
import { COMMANDS } from "./table.ts";

/** The rate every Beken loader starts at (docs/uart.md §1). */
export const BOOT_BAUD = 115200;

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** Give up after this long (ms). Default 20 000. */
  linkTimeoutMs?: number;
  /** Reset schedule; default {@link DEFAULT_RESET_STRATEGIES}; `[]` for plain link checks. */
  resetStrategies?: readonly ResetStrategy[];
  /** Progress and hints. */
  onEvent?: (event: SessionEvent) => void;
  /** Wire tracing for the client that is created. */
  onWire?: (event: WireEvent) => void;
  /** Reuse this client instead of creating one. */
  client?: UartClient;
  /** Stops the link-check loop (Ctrl-C) with a `CANCELLED` error. */
  signal?: AbortSignal;
}

/** How long one link check waits for its reply (docs/uart.md §3.3, BT). */
const LINK_ATTEMPT_MS = 5;
/** Silence that ends the drain after a successful link check. */
const DRAIN_SILENCE_MS = 2;

/**
 * Link with the loader: send LinkCheck, wait up to 5 ms for its reply, repeat, running the
 * reset strategies on their schedule; then drain stale replies. Returns the client.
 *
 * Throws {@link FlashError} `NO_LINK` after `linkTimeoutMs`.
 *
 * @example
 * ```ts
 * import type { ByteLink } from "../io/link.ts";
 * declare const link: ByteLink;
 * const client = await connect(link, { onEvent: (e) => console.error(e.message) });
 * ```
 */
export async function connect(link: ByteLink, options: ConnectOptions = {}): Promise<UartClient> {
  const client = options.client ?? new UartClient(link, { onWire: options.onWire });
  const timeoutMs = options.linkTimeoutMs ?? 20_000;
  const heardBefore = client.stats.bytesIn;
  const ok = await linkUp(
    client,
    timeoutMs,
    options.resetStrategies ?? DEFAULT_RESET_STRATEGIES,
    options.onEvent,
    options.signal,
  );
  if (ok) return client;
  const heard = client.stats.bytesIn - heardBefore;
  if (heard > 0) {
    // something talks, but not the boot protocol: running firmware, another baud rate, noise
    throw new FlashError(
      "NO_LINK",
      `${link.name} sent ${heard} bytes in ${seconds(timeoutMs)}, but never a boot-loader reply`,
      "the chip is running its firmware or talks at another rate: hold CEN to GND for 0.25 s while this runs, and make sure nothing else drives its RX",
    );
  }
  throw new FlashError(
    "NO_LINK",
    `no reply to link check on ${link.name} after ${seconds(timeoutMs)}`,
    "reset the chip (CEN to GND) or power-cycle it while this runs; check TX→RX, RX→TX, GND and 3.3 V",
  );
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

/** The link-check loop; true when linked within `timeoutMs`. */
export async function linkUp(
  client: UartClient,
  timeoutMs: number,
  strategies: readonly ResetStrategy[],
  onEvent?: (event: SessionEvent) => void,
  signal?: AbortSignal,
): Promise<boolean> {
  const link = client.link;
  const clock = link.clock;
  const t0 = clock.now();
  const usable = strategies.filter((s) => s.kind !== "modem-pulse" || link.hasModemLines);
  const last = usable.map(() => ({ ran: false, at: 0, tries: 0 }));
  let tries = 0;
  while (clock.now() - t0 < timeoutMs) {
    if (signal?.aborted) {
      throw new FlashError(
        "CANCELLED",
        `linking on ${link.name} interrupted`,
        "run the command again when ready",
      );
    }
    const elapsed = clock.now() - t0;
    for (const [i, s] of usable.entries()) {
      const l = last[i];
      if (elapsed < s.startMs) continue;
      const due = !l.ran ||
        (s.everyMs !== undefined && elapsed - l.at >= s.everyMs) ||
        (s.everyTries !== undefined && tries - l.tries >= s.everyTries);
      if (!due) continue;
      Object.assign(l, { ran: true, at: elapsed, tries });
      await runResetStrategy(client, s, onEvent);
    }
    tries++;
    const before = clock.now();
    const reply = await client.tryCommand(COMMANDS.LinkCheck, {}, {
      timeoutMs: LINK_ATTEMPT_MS,
      flushFirst: false,
    });
    if (reply && reply.ok === 0) {
      await client.drain(DRAIN_SILENCE_MS);
      const ms = Math.round(clock.now() - t0);
      onEvent?.({ type: "linked", attempts: tries, ms, message: `linked with the loader after ${ms} ms` });
      return true;
    }
    if (clock.now() === before) await clock.sleep(LINK_ATTEMPT_MS);
  }
  return false;
}
