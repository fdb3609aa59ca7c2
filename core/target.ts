/**
 * A flash target: the handful of primitive operations the flasher needs, implemented once
 * over the boot UART (core/uart) and once over SPI (core/spi). Backups, sector skipping,
 * retries, guards, journals and progress live in the flasher, above this interface, so they
 * behave the same on every path.
 *
 * @module
 */

/** Size of an erase sector, and the unit of reads and writes. */
export const SECTOR = 4096;
/** Size of an erase block. */
export const BLOCK = 65536;

/** What a target reports about its flash. */
export interface FlashInfo {
  /** JEDEC ID in wire order (manufacturer, type, capacity), when the path can read it. */
  flashId: Uint8Array | null;
  /** Flash size in bytes. */
  flashSize: number;
  /** Status registers SR1, SR2[, SR3] where readable. */
  statusRegisters: number[] | null;
}

/** Outcome of an unprotect attempt. */
export interface UnprotectReport {
  /** SR value(s) before. */
  before: number[];
  /** SR value(s) after (equal to `before` when nothing was written). */
  after: number[];
  /** Whether a status-register write was issued. */
  wrote: boolean;
}

/** Wire and time accounting for one operation (issue 6/6); every target keeps one. */
export interface WireStats {
  /** Bytes sent to the chip. */
  bytesOut: number;
  /** Bytes received from the chip. */
  bytesIn: number;
  /** Request/reply exchanges. */
  roundTrips: number;
}

/** The primitive operations of a path. Addresses are logical flash addresses. */
export interface FlashTarget {
  /** "uart" (boot loader protocol) or "spi" (raw SPI NOR). */
  readonly kind: "uart" | "spi";
  /** Flash geometry and identity. */
  info(): Promise<FlashInfo>;
  /** Read `SECTOR` bytes at a sector-aligned address. */
  readSector(addr: number): Promise<Uint8Array>;
  /**
   * Read many sectors in order, overlapping requests with replies where the path allows it
   * (read-ahead on the boot UART, batched transactions on SPI). Optional: without it the
   * flasher calls {@link readSector} per sector. Each sector goes to `onSector` as it arrives;
   * the first failure is thrown, and the sectors already handed over stay valid.
   */
  readSectors?(
    addrs: readonly number[],
    onSector: (addr: number, data: Uint8Array) => void | Promise<void>,
  ): Promise<void>;
  /** Erase the 4 KiB sector at `addr`. */
  eraseSector(addr: number): Promise<void>;
  /** Erase the 64 KiB block at `addr` (64 KiB aligned). */
  eraseBlock(addr: number): Promise<void>;
  /** Program a whole erased sector. */
  writeSector(addr: number, data: Uint8Array): Promise<void>;
  /**
   * Standard CRC-32 of `len` bytes at `addr`, computed by the chip when the path has a chip
   * CRC (`hasChipCrc`), otherwise by reading the bytes back.
   */
  crc(addr: number, len: number): Promise<number>;
  /** Whether `crc` is computed chip-side (cheap on the wire). */
  readonly hasChipCrc: boolean;
  /**
   * The loader lifts its flash protection only on an erase (T-type loaders re-protect after
   * every CheckCRC), so a program not preceded by an erase may be dropped: a blank sector must
   * still be erased before it is written.
   */
  readonly eraseBeforeProgram?: boolean;
  /** Clear block protection if any protect bit is set; report what was done. */
  unprotect(): Promise<UnprotectReport>;
  /** Counters since the target was opened. */
  readonly stats: WireStats;
  /**
   * Erase and program requests whose reply never came (absent where every request is answered on
   * the bus, as on SPI): such a request may have been carried out at another address.
   */
  readonly unansweredChanges?: number;
  /** Restart the chip into its application. */
  reboot(): Promise<void>;
  /** Release the underlying port. */
  close(): Promise<void>;
}
