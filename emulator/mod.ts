/**
 * The emulator as a library: a byte-faithful Beken chip behind a virtual UART, and a virtual
 * CH341A with the chip in SPI flash mode behind it, both on a virtual clock. Other flashers can
 * be tested against it; `deno task emulate` serves it on a PTY or a loopback TCP port. Fault
 * injection is the `./faults` export.
 *
 * @example A chip, linked and identified through this package's flasher
 * ```ts
 * import { createVirtualChip } from "./mod.ts";
 * import { openUartTarget } from "../mod.ts";
 *
 * const chip = await createVirtualChip({ chip: "bk7231n" });
 * const { identity } = await openUartTarget(chip.link(), { baud: 2_000_000 });
 * identity.profile.name; // "BK7231N"
 * ```
 *
 * @module
 */

export { createVirtualChip, efuseFromKey, type VirtualChip, type VirtualChipOptions } from "./virtual.ts";
export { type AppBehaviour, BekenChip, type BekenChipOptions, type BootState, type RxLoss } from "./chip.ts";
export type { BootCheck } from "./boot.ts";
export type {
  BaudDelayRule,
  BusyBehaviour,
  CrcLengthRule,
  LoaderFamily,
  LoaderFamilyId,
  SrLockQuirk,
} from "../core/chips/loaders.ts";
export type { LoaderFlash, LoaderHost } from "./loader.ts";
export type { TxChunk, UartDevice } from "./uart_device.ts";
export { type SpiEntryModel, SpiModeChip, type SpiModeState } from "./spi_mode.ts";
export { VirtualWire, type WireEvent } from "./wire.ts";
export { type EraseKind, NorFlash, type NorOpResult, type NorSnapshot, type NorTiming } from "./nor.ts";
export {
  createVirtualCh341a,
  type SpiPinsDevice,
  VirtualCh341a,
  type VirtualCh341aRig,
  type VirtualCh341aSetup,
  type VirtualCh341aTiming,
  type VirtualUsbStats,
} from "./ch341a.ts";
