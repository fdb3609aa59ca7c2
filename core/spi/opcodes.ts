/**
 * SPI NOR opcodes and status bits (docs/spi-ch341.md C.1, C.2): the one place the SPI driver,
 * the UART target (whose loader forwards them, docs/uart.md §4.11, §4.13) and the emulated
 * flash take them from.
 *
 * @module
 */

/** Opcodes of 25-series SPI NOR flash (3-byte addresses). */
export const SPI_OP = {
  /** Read JEDEC ID: manufacturer, type, capacity. */
  READ_ID: 0x9f,
  /** Read manufacturer and device ID (address selects the order). */
  READ_MFR_DEVICE_ID: 0x90,
  /** Release from deep power-down; also reads an ID byte. */
  RELEASE_POWER_DOWN: 0xab,
  /** Set the write-enable latch. */
  WRITE_ENABLE: 0x06,
  /** Clear the write-enable latch. */
  WRITE_DISABLE: 0x04,
  /** Write enable for volatile status bits. */
  VOLATILE_SR_WRITE_ENABLE: 0x50,
  /** Read status register 1. */
  READ_SR1: 0x05,
  /** Read status register 2. */
  READ_SR2: 0x35,
  /** Read status register 3 (configuration register on Macronix). */
  READ_SR3: 0x15,
  /** Write status register 1 (or 1 and 2, or 1 to 3, by length). */
  WRITE_SR: 0x01,
  /** Write status register 2 on its own. */
  WRITE_SR2: 0x31,
  /** Write status register 3 on its own. */
  WRITE_SR3: 0x11,
  /** Read data. */
  READ: 0x03,
  /** Read data with one dummy byte. */
  FAST_READ: 0x0b,
  /** Program up to one 256-byte page. */
  PAGE_PROGRAM: 0x02,
  /** Erase a 4 KiB sector. */
  ERASE_4K: 0x20,
  /** Erase a 32 KiB block. */
  ERASE_32K: 0x52,
  /** Erase a 64 KiB block. */
  ERASE_64K: 0xd8,
  /** Erase the whole chip. */
  ERASE_CHIP: 0xc7,
  /** Erase the whole chip (the older opcode). */
  ERASE_CHIP_ALT: 0x60,
} as const;

/** Status register 1: write in progress. */
export const SR_WIP = 0x01;
/** Status register 1: write-enable latch. */
export const SR_WEL = 0x02;

/** Erase granularities of SPI NOR. */
export type EraseKind = "4k" | "32k" | "64k" | "chip";

/** The opcode a host sends for each erase. */
export const ERASE_OPCODE: Readonly<Record<EraseKind, number>> = Object.freeze({
  "4k": SPI_OP.ERASE_4K,
  "32k": SPI_OP.ERASE_32K,
  "64k": SPI_OP.ERASE_64K,
  chip: SPI_OP.ERASE_CHIP,
});

/** Bytes one block erase clears. */
export const ERASE_SIZE: Readonly<Record<Exclude<EraseKind, "chip">, number>> = Object.freeze({
  "4k": 0x1000,
  "32k": 0x8000,
  "64k": 0x10000,
});

/** The erase an opcode asks for (both chip-erase opcodes included), or null. */
export function eraseKindOf(op: number): EraseKind | null {
  switch (op) {
    case SPI_OP.ERASE_4K:
      return "4k";
    case SPI_OP.ERASE_32K:
      return "32k";
    case SPI_OP.ERASE_64K:
      return "64k";
    case SPI_OP.ERASE_CHIP:
    case SPI_OP.ERASE_CHIP_ALT:
      return "chip";
    default:
      return null;
  }
}

/**
 * The byte a host streams into a Beken chip just after releasing CEN to put it into SPI flash
 * mode; the chip echoes it as its first byte when it enters (docs/spi-ch341.md B.2).
 */
export const BEKEN_SPI_SYNC = 0xd2;
