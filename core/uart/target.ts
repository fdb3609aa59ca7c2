/**
 * The boot UART as a {@link FlashTarget}: 4 KiB reads, writes and erases, chip-side CRC-32
 * with each loader's end-address rule and protect-lock quirk, status-register unprotect on
 * BootROM loaders (the register reads and writes in `status_register.ts`), and reboot. Plus
 * {@link openUartTarget}, which links, switches baud and identifies the chip in one call.
 *
 * @module
 */

import type { ChipProfile } from "../chips/profiles.ts";
import { keepsQueuedRequests, type LoaderFamily, loaderFamilyOf } from "../chips/loaders.ts";
import { FlashError } from "../errors.ts";
import { hex } from "../hex.ts";
import {
  BLOCK,
  type FlashInfo,
  type FlashTarget,
  SECTOR,
  type UnprotectReport,
  type WireStats,
} from "../target.ts";
import type { ByteLink } from "../io/link.ts";
import { type FlashPart, flashPartFor } from "../spi/jedec.ts";
import { needsUnprotect, srWordOf, unprotectedValue } from "../spi/status.ts";
import type { UartClient, WireEvent } from "./client.ts";
import { chipToStandard, crc32 } from "../crc.ts";
import { connect } from "./connect.ts";
import type { SessionEvent } from "./events.ts";
import { type ChipIdentity, detect } from "./identify.ts";
import type { ResetStrategy } from "./reset.ts";
import { switchBaud } from "./baud_switch.ts";
import { COMMANDS, ERASE_4K, ERASE_64K } from "./table.ts";
import { checkBaud } from "./baud.ts";
import { lockedError, readSrBytes, UNPROTECT_TRIES, writeSr } from "./status_register.ts";

/**
 * A chip reached over its boot UART, after {@link detect}.
 *
 * @example
 * ```ts
 * import type { UartClient } from "./client.ts";
 * import type { ChipIdentity } from "./identify.ts";
 * declare const client: UartClient;
 * declare const identity: ChipIdentity;
 * const target = new UartTarget(client, identity);
 * const crc = await target.crc(0x11000, 0x1000);
 * ```
 */
export class UartTarget implements FlashTarget {
  /** Always "uart". */
  readonly kind = "uart" as const;
  /** CheckCRC runs on the chip. */
  readonly hasChipCrc = true;
  /** Loaders with the CRC protect lock unprotect only on an erase (uart.md §5.4). */
  get eraseBeforeProgram(): boolean {
    return this.#profile.crcProtectLock;
  }
  /** The client commands go through. */
  readonly client: UartClient;
  /** What detection found. */
  readonly identity: ChipIdentity;
  readonly #part: FlashPart | null;
  /** A CheckCRC re-protected the flash and no LinkCheck has followed yet. */
  #crcLocked = false;
  /** The loader family of the identified chip mode (core/chips/loaders.ts). */
  readonly family: LoaderFamily;
  /**
   * Read many sectors with one request of read-ahead. Present only where the loader is known
   * to keep a request that arrives while it still sends a reply (or when forced): a loader
   * that drops such bytes, or one whose behaviour is unknown, is read one request at a time.
   */
  readonly readSectors?: (
    addrs: readonly number[],
    onSector: (addr: number, data: Uint8Array) => void | Promise<void>,
  ) => Promise<void>;

  /**
   * Wrap a linked client and what {@link detect} found; sets the client's personality and
   * loader family. `readAhead`: `true` forces read-ahead, `false` forbids it, absent follows
   * the loader family.
   */
  constructor(client: UartClient, identity: ChipIdentity, options: { readAhead?: boolean } = {}) {
    this.client = client;
    this.identity = identity;
    this.#part = identity.flashId ? flashPartFor(identity.flashId) : null;
    this.family = loaderFamilyOf(identity.profile);
    client.personality = identity.personality;
    client.flashSize = identity.flashSize;
    client.family = this.family;
    if (options.readAhead ?? keepsQueuedRequests(this.family)) {
      this.readSectors = (addrs, onSector) => this.#readAhead(addrs, onSector);
    }
  }

  /** Counters of the underlying client. */
  get stats(): WireStats {
    return this.client.stats;
  }

  /** Erase and program requests whose reply never came. */
  get unansweredChanges(): number {
    return this.client.unansweredChanges;
  }

  get #profile(): ChipProfile {
    return this.identity.profile;
  }

  get #size(): number {
    return this.identity.flashSize;
  }

  /** JEDEC ID, size and (on BootROM loaders) the status registers. */
  async info(): Promise<FlashInfo> {
    const part = this.#part;
    const statusRegisters = this.identity.personality === "FULL" && part && part.srCount > 0
      ? await readSrBytes(this.client, part)
      : null;
    return {
      flashId: this.identity.flashId ? Uint8Array.from(this.identity.flashId) : null,
      flashSize: this.#size,
      statusRegisters,
    };
  }

  /**
   * Read the sector at `addr`. Loaders that refuse raw addresses below their protected end
   * (T/U/BK7252) are read there through the wrap, at `addr + flashSize` (docs/uart.md §5.2).
   */
  async readSector(addr: number): Promise<Uint8Array> {
    this.#checkRange(addr, SECTOR, SECTOR);
    const wire = addr < this.#profile.loaderProtectedEnd ? addr + this.#size : addr;
    const reply = await this.client.command(COMMANDS.FlashRead4K, { addr: wire });
    return reply.data;
  }

  /**
   * Read sectors with one request of read-ahead: the request for the next sector is written
   * while the current reply is still arriving, so the adapter's turnaround is hidden (a ring-
   * buffer loader queues it and takes it up after the reply). The first failure is thrown; a
   * reply still on its way is skipped later by its address echo.
   */
  async #readAhead(
    addrs: readonly number[],
    onSector: (addr: number, data: Uint8Array) => void | Promise<void>,
  ): Promise<void> {
    for (const a of addrs) this.#checkRange(a, SECTOR, SECTOR);
    const requests = addrs.map((a) => ({ addr: a < this.#profile.loaderProtectedEnd ? a + this.#size : a }));
    const spec = COMMANDS.FlashRead4K;
    let posted = 0;
    const post = () => this.client.post(spec, requests[posted], { flushFirst: posted++ === 0 });
    if (requests.length > 0) await post();
    if (requests.length > 1) await post();
    for (let i = 0; i < requests.length; i++) {
      const reply = await this.client.receive(spec, requests[i]);
      if (posted < requests.length) await post();
      await onSector(addrs[i], reply.data);
    }
  }

  /** Erase the 4 KiB sector at `addr` (FlashErase 0x20). */
  async eraseSector(addr: number): Promise<void> {
    this.#checkRange(addr, SECTOR, SECTOR);
    this.#refuseLoaderWindow(addr, "erase");
    await this.#releaseCrcLock();
    await this.client.command(COMMANDS.FlashErase, { sizeCmd: ERASE_4K, addr });
  }

  /** Erase the 64 KiB block at `addr` (FlashErase 0xD8). */
  async eraseBlock(addr: number): Promise<void> {
    this.#checkRange(addr, BLOCK, BLOCK);
    this.#refuseLoaderWindow(addr, "erase", BLOCK);
    await this.#releaseCrcLock();
    await this.client.command(COMMANDS.FlashErase, { sizeCmd: ERASE_64K, addr });
  }

  /** Program an erased sector (FlashWrite4K). */
  async writeSector(addr: number, data: Uint8Array): Promise<void> {
    this.#checkRange(addr, SECTOR, SECTOR);
    if (data.length !== SECTOR) {
      throw new FlashError(
        "BAD_RANGE",
        `a sector write needs ${SECTOR} bytes, got ${data.length}`,
        "pad the last sector with 0xFF",
      );
    }
    this.#refuseLoaderWindow(addr, "write");
    await this.#releaseCrcLock();
    await this.client.command(COMMANDS.FlashWrite4K, { addr, data });
  }

  /**
   * Standard CRC-32 of `len` bytes at `addr`, computed by the chip: the end sent is
   * `addr + len - 1` on end-inclusive loaders and `addr + len` otherwise, and the chip's raw
   * register is converted. On loaders with the CRC protect lock (docs/uart.md §5.4) the next erase
   * or write is preceded by the LinkCheck that lets the loader unprotect again; reads and
   * further CRCs need none.
   */
  async crc(addr: number, len: number): Promise<number> {
    this.#checkRange(addr, len, 1);
    if (len === 0) return crc32(new Uint8Array(0));
    // a loader that counts whole 256-byte chunks cannot CRC the tail: it is read and added here
    const onChip = this.family.crcLength === "chunks256" ? len - (len % 256) : len;
    let crc = 0;
    if (onChip > 0) {
      const end = this.#profile.crcEndInclusive ? addr + onChip - 1 : addr + onChip;
      if (this.#profile.crcProtectLock) this.#crcLocked = true;
      const reply = await this.client.command(COMMANDS.CheckCRC, { start: addr, end });
      crc = chipToStandard(reply.crc);
    }
    for (let a = addr + onChip; a < addr + len;) {
      const sector = a - (a % SECTOR);
      const upto = Math.min(addr + len, sector + SECTOR);
      const data = await this.readSector(sector);
      crc = crc32(data.subarray(a - sector, upto - sector), crc);
      a = upto;
    }
    return crc;
  }

  /** After a CheckCRC, a protect-lock loader needs a LinkCheck before it erases again. */
  async #releaseCrcLock(): Promise<void> {
    if (!this.#crcLocked) return;
    await this.client.command(COMMANDS.LinkCheck, {});
    this.#crcLocked = false;
  }

  /**
   * Clear block protection on BootROM loaders: read SR1 (and SR2/SR3 as the part has them),
   * write only when a protect bit is set, verify by reading back. Basic loaders manage
   * protection themselves: nothing to do there.
   *
   * Throws {@link FlashError} `FLASH_LOCKED` when the protection does not clear.
   */
  async unprotect(): Promise<UnprotectReport> {
    const part = this.#part;
    if (this.identity.personality !== "FULL" || !part || part.srCount === 0) {
      return { before: [], after: [], wrote: false };
    }
    const before = await readSrBytes(this.client, part);
    let now = before;
    let wrote = false;
    let lost: FlashError | null = null;
    for (let attempt = 0; attempt < UNPROTECT_TRIES && needsUnprotect(part, srWordOf(now)); attempt++) {
      const target = unprotectedValue(part, srWordOf(now));
      try {
        await writeSr(this.client, part, target, now, attempt > 0);
        lost = null;
      } catch (e) {
        // a status write whose request or reply was lost on the wire: the read-back says whether
        // it took, and it is sent again only while protection is still set (never as a no-op)
        if (!(e instanceof FlashError) || e.code !== "TIMEOUT") throw e;
        lost = e;
      }
      wrote = true;
      await this.client.link.clock.sleep(10);
      now = await readSrBytes(this.client, part);
    }
    const sr = srWordOf(now);
    if (needsUnprotect(part, sr)) throw lost ?? lockedError(part, sr, this.client.link.name);
    return { before, after: now, wrote };
  }

  /** Send Reboot three times, 10 ms apart (docs/uart.md §4.4). */
  async reboot(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      if (i > 0) await this.client.link.clock.sleep(10);
      await this.client.send(COMMANDS.Reboot, { magic: 0xa5 });
    }
    await this.client.linkOp(() => this.client.link.drain());
  }

  /** Close the port. */
  async close(): Promise<void> {
    await this.client.close();
  }

  #checkRange(addr: number, len: number, align: number): void {
    if (!Number.isInteger(addr) || !Number.isInteger(len) || addr < 0 || len < 0 || addr % align !== 0) {
      throw new FlashError(
        "BAD_RANGE",
        `address ${hex(addr, 6)} (+${len}) is not ${align}-byte aligned`,
        `use addresses that are multiples of 0x${align.toString(16)}`,
      );
    }
    if (addr + len > this.#size) {
      throw new FlashError(
        "BAD_RANGE",
        `${hex(addr, 6)}..${hex(addr + len, 6)} lies beyond the ${this.#size / 0x100000} MiB flash`,
        `keep --addr + --size within ${hex(this.#size, 6)}`,
      );
    }
  }

  #refuseLoaderWindow(addr: number, what: string, len = SECTOR): void {
    const end = this.#profile.loaderProtectedEnd;
    const f = this.family.forbidden;
    const silent = f.answer === "silence"
      ? f.ranges.find((r) => addr < r.end && addr + len > r.start)
      : undefined;
    if (silent) {
      // the loader would not answer at all: refuse before sending rather than time out
      throw new FlashError(
        "BOOTLOADER_GUARD",
        `the ${this.family.name} ignores ${what}s of ${hex(silent.start)}..${
          hex(silent.end - 1)
        } without a reply (asked for ${hex(addr)})`,
        `${what} at ${hex(silent.end)} or above; that range can only be written over SPI`,
      );
    }
    if (addr < end) {
      throw new FlashError(
        "BOOTLOADER_GUARD",
        `the ${this.#profile.name} bootloader refuses to ${what} below ${hex(end, 6)} (asked for ${
          hex(addr, 6)
        })`,
        `${what} at ${hex(end, 6)} or above; the bootloader itself can only be replaced over SPI`,
      );
    }
  }
}

/** Options of {@link openUartTarget}. */
export interface OpenUartOptions {
  /** The chip mode asked for; detected when absent. */
  chip?: ChipProfile;
  /**
   * Working baud rate (default 115200, the loader's own). A rate the chip's UART divisor cannot
   * make closely enough is refused before the port is touched ({@link checkBaud}).
   */
  baud?: number;
  /** Link-check give-up time, ms (default 20 000). */
  linkTimeoutMs?: number;
  /** Turn key and chip-ID mismatches into warnings. */
  overrideKeyCheck?: boolean;
  /** Progress, hints and warnings. */
  onEvent?: (event: SessionEvent) => void;
  /** Reset schedule (default: `DEFAULT_RESET_STRATEGIES` of `reset.ts`). */
  resetStrategies?: readonly ResetStrategy[];
  /** Wire tracing. */
  onWire?: (event: WireEvent) => void;
  /** Stops linking (Ctrl-C) with a `CANCELLED` error. */
  signal?: AbortSignal;
  /** Force read-ahead on (`true`) or off (`false`); absent follows the loader family. */
  readAhead?: boolean;
}

/** A linked, identified chip. */
export interface OpenedUart {
  /** The chip as a flash target. */
  target: UartTarget;
  /** What detection found. */
  identity: ChipIdentity;
  /** The client underneath, for raw commands and wire counters. */
  client: UartClient;
  /** The baud rate in use (115200 after a fallback). */
  baud: number;
}

/**
 * Link with the chip on `link`, switch to `options.baud` and identify it.
 *
 * @example
 * ```ts
 * import { chipById } from "../chips/profiles.ts";
 * import type { ByteLink } from "../io/link.ts";
 * declare const link: ByteLink;
 * const { target, identity } = await openUartTarget(link, { chip: chipById("bk7231n"), baud: 921600 });
 * identity.flashSize; // 2097152
 * ```
 */
export async function openUartTarget(link: ByteLink, options: OpenUartOptions = {}): Promise<OpenedUart> {
  if (options.baud !== undefined) checkBaud(options.baud);
  const client = await connect(link, {
    linkTimeoutMs: options.linkTimeoutMs,
    resetStrategies: options.resetStrategies,
    onEvent: options.onEvent,
    onWire: options.onWire,
    signal: options.signal,
  });
  const baud = await switchBaud(client, options.baud ?? 115200, {
    onEvent: options.onEvent,
    relinkTimeoutMs: options.linkTimeoutMs,
    resetStrategies: options.resetStrategies,
    signal: options.signal,
  });
  const identity = await detect(client, {
    chip: options.chip,
    overrideKeyCheck: options.overrideKeyCheck,
    onEvent: options.onEvent,
  });
  const target = new UartTarget(client, identity, { readAhead: options.readAhead });
  return { target, identity, client, baud };
}
