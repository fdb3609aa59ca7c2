/**
 * Moving chip and host to the working baud rate (docs/uart.md §4.5), with retries, recovery of
 * a chip lost half-way, and the fall-back to 115200.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import type { ByteLink } from "../io/link.ts";
import type { UartClient } from "./client.ts";
import { BOOT_BAUD, linkUp } from "./connect.ts";
import type { SessionEvent } from "./events.ts";
import { DEFAULT_RESET_STRATEGIES, type ResetStrategy } from "./reset.ts";
import { COMMANDS } from "./table.ts";

/** Options of {@link switchBaud}. */
export interface SwitchBaudOptions {
  /** Attempts before falling back to 115200 (default 3). */
  retries?: number;
  /** The delay byte of SetBaudRate, ms (default 20; the host switches after half of it). */
  delayMs?: number;
  /** Retry and fallback notices. */
  onEvent?: (event: SessionEvent) => void;
  /** How long to try re-linking after a failed attempt when the chip is lost (default 20 000). */
  relinkTimeoutMs?: number;
  /** Reset schedule for that re-link (default {@link DEFAULT_RESET_STRATEGIES}). */
  resetStrategies?: readonly ResetStrategy[];
  /** Stops that re-link (Ctrl-C) with a `CANCELLED` error. */
  signal?: AbortSignal;
}

/**
 * Move chip and host to `baud` (docs/uart.md §4.5): SetBaudRate at the old rate, drain, sleep
 * half the delay, reprogram the host, read the echo at the new rate. On failure the host goes
 * back to 115200, re-links, and tries again; after `retries` failures the session stays at
 * 115200 and a `baud-fallback` event says so. Returns the rate in use.
 *
 * Throws {@link FlashError} `NO_LINK` when the chip cannot be found again at any rate.
 */
export async function switchBaud(
  client: UartClient,
  baud: number,
  options: SwitchBaudOptions = {},
): Promise<number> {
  const link = client.link;
  if (baud === BOOT_BAUD && link.baud === BOOT_BAUD) return BOOT_BAUD;
  const retries = Math.max(1, options.retries ?? 3);
  const delayMs = Math.min(255, Math.max(0, Math.round(options.delayMs ?? 20)));
  const onEvent = options.onEvent;
  const old = link.baud;
  // an adapter that cannot do the rate is found out before the chip is told to switch
  const hostCan = await setHostBaud(link, baud);
  await client.linkOp(() => link.setBaud(old));
  if (!hostCan) {
    onEvent?.({
      type: "baud-fallback",
      requested: baud,
      baud: old,
      message: `the adapter on ${link.name} cannot do ${baud} baud: continuing at ${old} baud (slower)`,
    });
    return old;
  }
  for (let attempt = 1; attempt <= retries; attempt++) {
    const failure = await trySetBaud(client, baud, delayMs);
    if (!failure) {
      onEvent?.({ type: "baud", baud, message: `switched to ${baud} baud` });
      return baud;
    }
    onEvent?.({
      type: "baud-retry",
      baud,
      attempt,
      message: `switching to ${baud} baud failed (${failure}); attempt ${attempt} of ${retries}`,
    });
    await recover(client, baud, delayMs, options);
    if (attempt < retries) await link.clock.sleep(50);
  }
  if (baud === BOOT_BAUD) {
    throw new FlashError(
      "NO_LINK",
      `the chip on ${link.name} does not confirm ${BOOT_BAUD} baud`,
      "reset the chip (CEN to GND) or power-cycle it and run again",
    );
  }
  onEvent?.({
    type: "baud-fallback",
    requested: baud,
    baud: BOOT_BAUD,
    message:
      `could not switch to ${baud} baud after ${retries} tries: continuing at ${BOOT_BAUD} baud (slower)`,
  });
  return BOOT_BAUD;
}

/** One SetBaudRate handshake; returns why it failed, or null on success. */
async function trySetBaud(client: UartClient, baud: number, delayMs: number): Promise<string | null> {
  const link = client.link;
  try {
    await client.command(COMMANDS.SetBaudRate, { baud, delay: delayMs }, {
      afterWrite: async () => {
        await link.drain();
        await link.clock.sleep(delayMs / 2);
        await link.setBaud(baud);
      },
    });
    return null;
  } catch (e) {
    if (e instanceof FlashError && e.code === "DISCONNECTED") throw e;
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * After a failed handshake: find the chip at 115200; failing that at the new rate (the chip
 * switched but its echo was lost), and bring it back; failing that, re-link with resets.
 */
async function recover(client: UartClient, baud: number, delayMs: number, options: SwitchBaudOptions) {
  const link = client.link;
  const quickMs = 300;
  if (await setHostBaud(link, BOOT_BAUD) && await linkUp(client, quickMs, [])) return;
  if (baud !== BOOT_BAUD && await setHostBaud(link, baud) && await linkUp(client, quickMs, [])) {
    const back = await trySetBaud(client, BOOT_BAUD, delayMs);
    if (!back) return;
  }
  await setHostBaud(link, BOOT_BAUD);
  const again = await linkUp(
    client,
    options.relinkTimeoutMs ?? 20_000,
    options.resetStrategies ?? DEFAULT_RESET_STRATEGIES,
    options.onEvent,
    options.signal,
  );
  if (!again) {
    throw new FlashError(
      "NO_LINK",
      `lost the chip on ${link.name} while switching to ${baud} baud`,
      `reset the chip (CEN to GND) or power-cycle it, then run again with --baud ${BOOT_BAUD}`,
    );
  }
}

async function setHostBaud(link: ByteLink, baud: number): Promise<boolean> {
  try {
    await link.setBaud(baud);
    return true;
  } catch {
    return false;
  }
}
