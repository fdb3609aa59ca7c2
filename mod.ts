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
 * @example The same against the emulator (the `./emulator` export)
 * ```ts
 * import { createVirtualChip } from "./emulator/mod.ts";
 * import { openUartTarget } from "./mod.ts";
 *
 * const chip = await createVirtualChip({ chip: "bk7231n" });
 * const { identity } = await openUartTarget(chip.link(), { baud: 2_000_000 });
 * identity.profile.name; // "BK7231N"
 * ```
 *
 * @module
 */

// Time, the timing model, errors and the flash-target interface every path implements.
export { type Clock, realClock, VirtualClock } from "./core/clock.ts";
export {
  CH341A_TIMING,
  type Ch341aTimingModel,
  DEFAULT_TIMING,
  type TimingModel,
  wireMs,
} from "./core/timing.ts";
export {
  ChipStatusError,
  type DamageReport,
  type ErrorCode,
  FlashError,
  LOADER_STATUS,
  statusName,
} from "./core/errors.ts";
export { chipCrc, Crc32, crc32 } from "./core/crc.ts";
export {
  BLOCK,
  type FlashInfo,
  type FlashTarget,
  SECTOR,
  type UnprotectReport,
  type WireStats,
} from "./core/target.ts";

// Chips as data.
export { chipById, type ChipProfile, CHIPS, formatKey, type Region } from "./core/chips/profiles.ts";
export { bootloaderByCrc, KNOWN_BOOTLOADERS, type KnownBootloader } from "./core/chips/bootloaders.ts";
export { PERSONALITIES, type Personality } from "./core/chips/personality.ts";
export {
  type BaudDelayRule,
  type BusyBehaviour,
  type CrcLengthRule,
  LOADER_FAMILIES,
  type LoaderFamily,
  type LoaderFamilyId,
  type SrLockQuirk,
} from "./core/chips/loaders.ts";

// Links and programmers.
export { type ByteLink, LinkClosedError, type ModemSignals } from "./core/io/link.ts";
export { openSerial, type SerialOptions } from "./core/io/serial/mod.ts";
export { openTcp, TcpLink, type TcpOptions } from "./core/io/tcp.ts";
export { choosePort, type ListOptions, listPorts, type PortInfo } from "./core/io/ports.ts";
export {
  findCh341a,
  type UsbDeviceLike,
  type UsbInResult,
  type UsbLoader,
  type UsbModule,
  type UsbOutResult,
} from "./core/io/usb.ts";
export { type ModemControl, openRfc2217, Rfc2217Link, type Rfc2217Options } from "./core/io/rfc2217.ts";
export { Ch341aSpi } from "./core/io/ch341a.ts";
export { ForwardingUsbDevice } from "./core/io/usb_forward.ts";
export type { SpiFrame, SpiMaster, SpiStats, SpiStep } from "./core/io/spi.ts";

// The boot-UART protocol.
export {
  type Command,
  type CommandName,
  COMMANDS,
  type CommandSpec,
  type CommandTable,
  type Field,
  type FieldValue,
  type FieldValues,
  type FrameKind,
  type ReplySpec,
  type ReplyValues,
  type RequestValues,
} from "./core/uart/table.ts";
export {
  checkReply,
  encodeReply,
  encodeRequest,
  type ReplyCheck,
  type ReplyFrame,
  type RequestFrame,
  type Values,
} from "./core/uart/codec.ts";
export { ReplyParser, RequestParser } from "./core/uart/parser.ts";
export { type CommandOptions, UartClient, type WireEvent } from "./core/uart/client.ts";
export { switchBaud, type SwitchBaudOptions } from "./core/uart/baud_switch.ts";
export { connect, type ConnectOptions } from "./core/uart/connect.ts";
export { readKey } from "./core/uart/efuse.ts";
export { type SessionEvent } from "./core/uart/events.ts";
export { type ChipIdentity, detect, type DetectOptions } from "./core/uart/identify.ts";
export { type ResetStrategy } from "./core/uart/reset.ts";
export { type OpenedUart, type OpenUartOptions, openUartTarget, UartTarget } from "./core/uart/target.ts";

// SPI NOR and Beken SPI flash mode.
export { FLASH_PARTS, type FlashPart, lookupFlash, type SrLayout } from "./core/spi/jedec.ts";
export {
  type ByteRange,
  decodeStatus,
  diagnoseLock,
  type LockDiagnosis,
  type LockMode,
  protectedRange,
  type StatusFields,
  unprotectedValue,
} from "./core/spi/status.ts";
export {
  DEFAULT_ENTRY,
  enterSpiMode,
  type EntryHooks,
  type EntryParams,
  type EntryProgress,
  type EntryResult,
} from "./core/spi/entry.ts";
export { BEKEN_SPI_SYNC, type EraseKind, SPI_OP } from "./core/spi/opcodes.ts";
export { type NorTimeouts, SpiNor, type UnprotectOutcome } from "./core/spi/nor.ts";
export { openSpiTarget, SpiFlashTarget, type SpiTargetOptions } from "./core/spi/target.ts";

// The operations, identical over every FlashTarget.
export { createContext, type FlasherContext, type FlasherEvent } from "./core/flasher/context.ts";
export { type ProgressEvent, type ProgressListener, type ProgressOp } from "./core/flasher/progress.ts";
export { type Accounting } from "./core/flasher/accounting.ts";
export { type ByteSource, type FlashContent, toSource } from "./core/flasher/source.ts";
export {
  readFlash,
  readFlashTo,
  type ReadOptions,
  type ReadResult,
  type ReadSink,
  type ReadSummary,
} from "./core/flasher/read.ts";
export { writeFlash, type WriteOptions } from "./core/flasher/write.ts";
export {
  verifyFlash,
  VerifyMismatchError,
  type VerifyOptions,
  type VerifyResult,
} from "./core/flasher/verify.ts";
export { type EraseOptions, eraseRegion } from "./core/flasher/erase.ts";
export { type BackupRecord, takeBackup } from "./core/flasher/backup.ts";
export type { BackupInfo, BackupOptions } from "./core/flasher/backup_entry.ts";
export type { BackupSidecar, ChipIdentity as BackupIdentity } from "./core/flasher/sidecar.ts";
export {
  type BackupStore,
  MemoryStore,
  type StoreEntry,
  type StoreLock,
  type StoreWriter,
} from "./core/flasher/store.ts";
export { DirectoryStore, type ImageFile, openImage } from "./core/flasher/files.ts";
export { type BlockPolicy, type BlockWork, planBlocks } from "./core/flasher/erase_plan.ts";
export { type ProgramOptions, type ProgramReport } from "./core/flasher/program.ts";
export { JOURNAL_VERSION, type WriteJournal } from "./core/flasher/journal.ts";
export type { Fingerprint } from "./core/flasher/fingerprint.ts";

// What is on the chip: images, keys, Tuya configuration, RF/MAC, OpenBeken configuration.
export { BekenCipher, isBypassKey, type KeyWords, TUYA_N_KEY, ZERO_KEY } from "./core/image/cipher.ts";
export { classifyImage, type KeyClass, type KeyClassification, sameCipher } from "./core/image/key_class.ts";
export { checkImageKey, type KeyCheckResult } from "./core/image/key_check.ts";
export { inspectDump, type InspectReport, type Partition, redactReport } from "./core/image/inspect.ts";
export { type DataBlock, findStorage, type TuyaStorage } from "./core/image/tuya_storage.ts";
export {
  type BoardDescription,
  describeBoard,
  type ObkTemplate,
  obkTemplate,
  type PinAssignment,
  type RoleRule,
  TUYA_PIN_ROLES,
  type TuyaValue,
  type ValueKind,
} from "./core/image/tuya_config.ts";
export { parseRfTlv, type RfTlv, type TlvRecord } from "./core/image/rf_tlv.ts";
export {
  parseRblHeader,
  parseRblOta,
  type RblHeader,
  type RblInFlash,
  type RblOta,
} from "./core/image/rbl.ts";
export {
  decodeObkConfig,
  encodeObkConfig,
  type ObkConfig,
  type ObkPin,
  type ObkSettings,
} from "./core/image/obk_config.ts";
