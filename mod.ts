/**
 * bekenlab: flash, back up and recover Beken BK72xx Wi-Fi chips, over the boot UART or in SPI
 * flash mode, against real hardware or a byte-faithful emulator.
 *
 * The flashing core is runtime-agnostic: it talks to a {@link ByteLink} (UART-like transports)
 * or an {@link SpiMaster}, waits on an injected {@link Clock}, and reports failures as
 * {@link FlashError}s with a remedy. Open a target, build a context, run an operation:
 *
 * @example Back up a chip behind a USB-UART adapter
 * ```ts
 * import { createContext, openSerial, openUartTarget, readFlash } from "./mod.ts";
 *
 * const link = await openSerial("/dev/ttyUSB0");
 * const { target, identity } = await openUartTarget(link, { baud: 921600 });
 * const ctx = await createContext(target, link.clock);
 * const image = await readFlash(ctx, { addr: 0, size: identity.flashSize });
 * await target.close();
 * ```
 *
 * @example The same against the emulator
 * ```ts
 * import { createVirtualChip } from "./emulator/virtual.ts";
 * import { openUartTarget } from "./mod.ts";
 *
 * const chip = await createVirtualChip({ chip: "bk7231n" });
 * const { identity } = await openUartTarget(chip.link(), { baud: 2_000_000 });
 * identity.profile.name; // "BK7231N"
 * ```
 *
 * @module
 */

export { type Clock, realClock, VirtualClock } from "./core/clock.ts";
export { DEFAULT_TIMING, type TimingModel, wireMs } from "./core/timing.ts";
export { ChipStatusError, type DamageReport, type ErrorCode, FlashError } from "./core/errors.ts";
export { type ByteLink, LinkClosedError, type ModemSignals } from "./core/io/link.ts";

export { chipById, type ChipProfile, CHIPS, formatKey } from "./core/chips/profiles.ts";
export { bootloaderByCrc, KNOWN_BOOTLOADERS } from "./core/chips/bootloaders.ts";

export { COMMANDS, type CommandSpec, type Personality } from "./core/uart/table.ts";
export { checkReply, encodeReply, encodeRequest } from "./core/uart/codec.ts";
export { ReplyParser, RequestParser } from "./core/uart/parser.ts";
export { chipCrc, crc32 } from "./core/uart/crc.ts";
export { UartClient } from "./core/uart/client.ts";
export { connect, detect, readKey, switchBaud } from "./core/uart/session.ts";
export { openUartTarget, UartTarget } from "./core/uart/target.ts";

export { FLASH_PARTS, type FlashPart, lookupFlash } from "./core/spi/jedec.ts";
export { decodeStatus, diagnoseLock, protectedRange, unprotectedValue } from "./core/spi/status.ts";
export { DEFAULT_ENTRY, enterSpiMode, type EntryParams } from "./core/spi/entry.ts";
export { SpiNor } from "./core/spi/nor.ts";
export { openSpiTarget, SpiFlashTarget } from "./core/spi/target.ts";
export type { SpiMaster } from "./core/io/spi.ts";

export { openSerial } from "./core/io/serial/mod.ts";
export { openTcp } from "./core/io/tcp.ts";
export { choosePort, listPorts, type PortInfo } from "./core/io/ports.ts";
export { findCh341a, type UsbDeviceLike } from "./core/io/usb.ts";
export { Ch341aSpi } from "./core/io/ch341a.ts";

export * from "./core/flasher/mod.ts";

export { BekenCipher, isBypassKey, type KeyWords, TUYA_N_KEY, ZERO_KEY } from "./core/image/cipher.ts";
export { classifyImage, type KeyClass, type KeyClassification, sameCipher } from "./core/image/key_class.ts";
export { checkImageKey } from "./core/image/key_check.ts";
export { inspectDump, type InspectReport, redactReport } from "./core/image/inspect.ts";
export { findStorage } from "./core/image/tuya_storage.ts";
export { describeBoard, obkTemplate, TUYA_PIN_ROLES } from "./core/image/tuya_config.ts";
export { parseRfTlv } from "./core/image/rf_tlv.ts";
export { parseRblHeader, parseRblOta } from "./core/image/rbl.ts";
export { decodeObkConfig, encodeObkConfig } from "./core/image/obk_config.ts";
