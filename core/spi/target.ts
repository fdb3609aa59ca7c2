/**
 * The SPI path as a {@link FlashTarget}: Beken SPI-mode entry (or none, for a bare flash on a
 * clip), JEDEC identify, then raw flash addresses over {@link SpiNor}. There is no chip-side
 * CRC on this path: `crc` reads the bytes back and hashes them.
 *
 * @example
 * ```ts
 * import { Ch341aSpi } from "../io/ch341a.ts";
 * import { findCh341a } from "../io/usb.ts";
 * const spi = await Ch341aSpi.open(await findCh341a(0));
 * const target = await openSpiTarget(spi, { onProgress: (p) => console.error(p.message) });
 * const first = await target.readSector(0);
 * ```
 *
 * @module
 */

import type { FlashInfo, FlashTarget, UnprotectReport, WireStats } from "../target.ts";
import { BLOCK, SECTOR } from "../target.ts";
import type { SpiMaster } from "../io/spi.ts";
import { Crc32 } from "../crc.ts";
import { enterSpiMode, type EntryHooks, type EntryParams, type EntryResult, pulseCen } from "./entry.ts";
import type { FlashPart } from "./jedec.ts";
import { type NorTimeouts, SpiNor } from "./nor.ts";

/** Sectors read in one SPI transaction by {@link SpiFlashTarget.readSectors}. */
const SECTORS_PER_BATCH = 16;

/** Options of {@link openSpiTarget}. */
export interface SpiTargetOptions extends EntryHooks {
  /** Beken SPI-mode entry parameters, or `false` for a plain SPI flash (no CEN, no 0xD2). */
  entry?: Partial<EntryParams> | false;
  /** Force a part instead of the JEDEC lookup. */
  part?: FlashPart;
  /** Busy-wait limits. */
  timeouts?: Partial<NorTimeouts>;
}

/** A FlashTarget over SPI NOR. */
export class SpiFlashTarget implements FlashTarget {
  readonly kind = "spi" as const;
  readonly hasChipCrc = false;
  /** The NOR operations underneath. */
  readonly nor: SpiNor;
  /** How entry went (null for a plain SPI flash). */
  readonly entry: EntryResult | null;
  readonly #spi: SpiMaster;
  #closed = false;

  /** A target on `nor`, reached through `spi`; `entry` is how SPI mode was entered, if it was. */
  constructor(spi: SpiMaster, nor: SpiNor, entry: EntryResult | null) {
    this.#spi = spi;
    this.nor = nor;
    this.entry = entry;
  }

  /** Wire counters: bytes on the bus and transactions (each one a round trip). */
  get stats(): WireStats {
    const s = this.#spi.stats;
    return { bytesOut: s.bytesOut, bytesIn: s.bytesIn, roundTrips: s.transactions };
  }

  async info(): Promise<FlashInfo> {
    return {
      flashId: this.nor.jedecId.slice(),
      flashSize: this.nor.size,
      statusRegisters: this.nor.part.srCount > 0 ? await this.nor.readStatus() : null,
    };
  }

  readSector(addr: number): Promise<Uint8Array> {
    return this.nor.read(addr, SECTOR);
  }

  /**
   * Read sectors in batches: each run of up to 16 contiguous sectors is one transaction of
   * 4 KiB read frames, which the adapter queues with its IN reads ahead.
   */
  async readSectors(
    addrs: readonly number[],
    onSector: (addr: number, data: Uint8Array) => void | Promise<void>,
  ): Promise<void> {
    for (let i = 0; i < addrs.length;) {
      let n = 1;
      while (n < SECTORS_PER_BATCH && i + n < addrs.length && addrs[i + n] === addrs[i] + n * SECTOR) n++;
      const data = await this.nor.read(addrs[i], n * SECTOR);
      for (let k = 0; k < n; k++) await onSector(addrs[i + k], data.subarray(k * SECTOR, (k + 1) * SECTOR));
      i += n;
    }
  }

  eraseSector(addr: number): Promise<void> {
    return this.nor.erase(addr, "4k");
  }

  eraseBlock(addr: number): Promise<void> {
    return this.nor.erase(addr - (addr % BLOCK), "64k");
  }

  writeSector(addr: number, data: Uint8Array): Promise<void> {
    return this.nor.program(addr, data.subarray(0, SECTOR));
  }

  /** Standard CRC-32 of the bytes read back, 64 KiB at a time. */
  async crc(addr: number, len: number): Promise<number> {
    const c = new Crc32();
    for (let o = 0; o < len; o += BLOCK) c.update(await this.nor.read(addr + o, Math.min(BLOCK, len - o)));
    return c.standard;
  }

  async unprotect(): Promise<UnprotectReport> {
    return await this.nor.unprotect();
  }

  /** Pulse CEN so a Beken chip leaves SPI mode and boots; nothing to do for a bare flash. */
  async reboot(): Promise<void> {
    if (this.entry) await pulseCen(this.#spi);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#spi.close();
  }
}

/**
 * Open the SPI path: Beken entry (unless `entry: false`), JEDEC identify, and a target.
 *
 * @example
 * ```ts
 * import type { SpiMaster } from "../io/spi.ts";
 * declare const spi: SpiMaster;
 * const target = await openSpiTarget(spi, { entry: { attempts: 20, cenLowMs: 500 } });
 * (await target.info()).flashSize; // 2097152
 * ```
 */
export async function openSpiTarget(spi: SpiMaster, opts: SpiTargetOptions = {}): Promise<SpiFlashTarget> {
  let entry: EntryResult | null = null;
  if (opts.entry !== false) {
    entry = await enterSpiMode(spi, opts.entry ?? {}, { signal: opts.signal, onProgress: opts.onProgress });
  }
  const nor = await SpiNor.identify(spi, {
    jedecId: entry?.jedecId,
    part: opts.part,
    timeouts: opts.timeouts,
  });
  return new SpiFlashTarget(spi, nor, entry);
}
