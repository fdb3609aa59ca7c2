/**
 * The UART session steps under their former common name: connecting (`connect.ts`, with the
 * reset strategies in `reset.ts`), switching the baud rate (`baud_switch.ts`) and identifying
 * the chip (`identify.ts`, reading the eFuse through `efuse.ts`, with the key guard in
 * `key_guard.ts`). Kept so that imports of this module keep working; new code imports the
 * step it needs.
 *
 * @module
 */

export { BOOT_BAUD, connect, type ConnectOptions } from "./connect.ts";
export { type SessionEvent } from "./events.ts";
export { DEFAULT_RESET_STRATEGIES, POWER_CYCLE_HINT, type ResetStrategy } from "./reset.ts";
export { switchBaud, type SwitchBaudOptions } from "./baud_switch.ts";
export { CHIP_ID_REG, type ChipIdentity, detect, type DetectOptions, DEVICE_ID_REG } from "./identify.ts";
export { TUYA_KEY } from "../chips/profiles.ts";
export { EFUSE_CTRL, EFUSE_OPTR, readEfuseByte, readKey } from "./efuse.ts";
