/**
 * The CH341A's USB command bytes (docs/spi-ch341.md A.4, A.5): the one place the driver, the
 * virtual programmer and the trace describer take them from.
 *
 * @module
 */

/** Bytes per USB packet on both bulk endpoints. */
export const CH341_PACKET = 32;
/** Bulk endpoint number (0x02 OUT, 0x82 IN). */
export const CH341_BULK_EP = 2;
/** SPI stream command. */
export const CMD_SPI_STREAM = 0xa8;
/** UIO stream command. */
export const CMD_UIO_STREAM = 0xab;
/** I2C stream command (used once to configure the stream engine). */
export const CMD_I2C_STREAM = 0xaa;
/** Read the pin levels: six bytes back, the first D7..D0. */
export const CMD_GET_INPUT = 0xa0;
/** Set outputs and directions of the parallel pins (11-byte command). */
export const CMD_SET_OUTPUT = 0xa1;
/** UIO sub-command: drive D5..D0 (low 6 bits). */
export const UIO_OUT = 0x80;
/** UIO sub-command: direction of D5..D0 (1 = output). */
export const UIO_DIR = 0x40;
/** UIO sub-command: delay in microseconds (low 6 bits). */
export const UIO_DELAY = 0xc0;
/** UIO sub-command: end of the packet's stream. */
export const UIO_END = 0x20;

/** UIO pin bits (docs/spi-ch341.md A.5). */
export const PIN = Object.freeze({ CS0: 0x01, CS1: 0x02, CEN: 0x04, SCK: 0x08, D4: 0x10, MOSI: 0x20 });
/** Idle: CS0 high, CEN high, SCK low, D1/D4/MOSI high. */
export const PINS_IDLE = 0x37;

/** Names of the stream commands, for describing recorded packets. */
export const CH341_COMMAND_NAMES: Readonly<Record<number, string>> = Object.freeze({
  [CMD_SPI_STREAM]: "SPI stream",
  [CMD_UIO_STREAM]: "UIO stream",
  [CMD_I2C_STREAM]: "I2C stream",
  [CMD_GET_INPUT]: "get version",
});
