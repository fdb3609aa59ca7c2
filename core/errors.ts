/**
 * Every failure a user can meet is a {@link FlashError}: a stable code, one line saying what
 * happened and one line saying what to do. A failure during a write also names the range that
 * may now differ from the image and where the backup is.
 *
 * @module
 */

/** Stable error codes; the CLI maps each to its exit status. */
export type ErrorCode =
  | "NO_LINK"
  | "TIMEOUT"
  | "BAD_REPLY"
  | "CHIP_STATUS"
  | "CRC_MISMATCH"
  | "WRONG_CHIP"
  | "WRONG_KEY"
  | "UNKNOWN_FLASH"
  | "FLASH_LOCKED"
  | "BOOTLOADER_GUARD"
  | "BAD_RANGE"
  | "BAD_IMAGE"
  | "UNSUPPORTED"
  | "PORT"
  | "DISCONNECTED"
  | "SPI_ENTRY"
  | "USB"
  | "WRITE_FAILED"
  | "VERIFY_FAILED"
  | "CANCELLED"
  | "USAGE"
  | "BACKUP_FAILED";

/** Details a write failure carries so the user knows what may be damaged. */
export interface DamageReport {
  /** First byte that may differ from the image (inclusive). */
  start: number;
  /** One past the last byte that may differ. */
  end: number;
  /** Path of the backup taken before the write, if any. */
  backup?: string;
}

/** A typed, user-facing failure: cause plus remedy. */
export class FlashError extends Error {
  /** What went wrong, as a stable code. */
  readonly code: ErrorCode;
  /** One line telling the user what to do about it. */
  readonly remedy: string;
  /** Which range of the flash may differ from what it was, when a write or erase failed midway. */
  damage?: DamageReport;
  /** A failure with its cause (`message`) and its remedy. */
  constructor(
    code: ErrorCode,
    cause: string,
    remedy: string,
    options?: { damage?: DamageReport; cause?: unknown },
  ) {
    super(cause, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "FlashError";
    this.code = code;
    this.remedy = remedy;
    this.damage = options?.damage;
  }
  /** The two (or three) lines the CLI prints. */
  lines(): string[] {
    const out = [`error: ${this.message}`, `remedy: ${this.remedy}`];
    if (this.damage) {
      const r = `0x${this.damage.start.toString(16)}..0x${(this.damage.end - 1).toString(16)}`;
      out.push(
        `flash in ${r} may now differ from the image; ${
          this.damage.backup ? `backup of the whole chip: ${this.damage.backup}` : "no backup was taken"
        }`,
      );
    }
    return out;
  }
}

/** Raised when a long reply carries a non-zero status byte (docs/uart.md §2.5). */
export class ChipStatusError extends FlashError {
  /** The non-zero status byte of the reply. */
  readonly status: number;
  /** Name of the command the reply answered. */
  readonly command: string;
  /** The reply to `command` carried `status`. */
  constructor(command: string, status: number) {
    super(
      "CHIP_STATUS",
      `chip answered ${command} with status ${status} (${statusName(status)})`,
      status === 6 || status === 4 || status === 5
        ? "the loader refused the address or length; check --addr/--size against the chip's protected window"
        : "retry; if it persists, power-cycle the chip and check its 3.3 V supply",
    );
    this.status = status;
    this.command = command;
  }
}

/**
 * Status bytes of the loader's long replies (docs/uart.md §2.5), named after Beken's loader
 * source. The one place they are spelled out: the client, the emulated loader and the messages
 * below use these.
 */
export const LOADER_STATUS = {
  OK: 0,
  FLASH_BUSY: 1,
  SPI_TIMEOUT: 2,
  FLASH_TIMEOUT: 3,
  PACKET_LENGTH_ERROR: 4,
  PAYLOAD_TOO_SHORT: 5,
  PARAMETER_ERROR: 6,
  UNKNOWN_COMMAND: 7,
} as const;

const STATUS_NAMES: Record<number, string> = {
  [LOADER_STATUS.OK]: "ok",
  [LOADER_STATUS.FLASH_BUSY]: "flash busy",
  [LOADER_STATUS.SPI_TIMEOUT]: "SPI timeout",
  [LOADER_STATUS.FLASH_TIMEOUT]: "flash operation timeout",
  [LOADER_STATUS.PACKET_LENGTH_ERROR]: "payload length error",
  [LOADER_STATUS.PAYLOAD_TOO_SHORT]: "packet length error",
  [LOADER_STATUS.PARAMETER_ERROR]: "flash operation parameter error",
  [LOADER_STATUS.UNKNOWN_COMMAND]: "unknown command",
};

/** Name of a long-reply status code. */
export function statusName(status: number): string {
  return STATUS_NAMES[status] ?? `status 0x${status.toString(16)}`;
}
