/**
 * The Beken boot-UART command table (docs/uart.md §4). One declarative row per command: frame
 * kind, opcode, request and response layouts, the fields the chip echoes, and which loader
 * personalities implement it. The host encoder, the reply decoder and the emulator's
 * dispatcher all read this table and nothing else.
 *
 * @module
 */

import { PERSONALITIES, type Personality } from "../chips/personality.ts";
import { LOADER_STATUS } from "../errors.ts";
import { SPI_OP } from "../spi/opcodes.ts";

export type { Personality };

/** A field of a request or reply payload. Integers are little-endian. */
export type Field =
  | { readonly name: string; readonly type: "u8" | "u16" | "u32" }
  /** A byte string: fixed `length`, or the rest of the payload when `length` is absent. */
  | { readonly name: string; readonly type: "bytes"; readonly length?: number };

/** Frame kinds: short `01 E0 FC LEN CMD …` or long `01 E0 FC FF F4 LEN16 CMD …`. */
export type FrameKind = "short" | "long";

/** The layout of a reply. Long replies carry a status byte before `fields`. */
export interface ReplySpec {
  /** RSP byte (differs from the request code only for LinkCheck). */
  readonly code: number;
  /** The reply's fields, after its status byte when long. */
  readonly fields: readonly Field[];
}

/** One command of the protocol. */
export interface CommandSpec {
  /** The command's name. */
  readonly name: CommandName;
  /** The command byte. */
  readonly code: number;
  /** Short or long frame. */
  readonly frame: FrameKind;
  /** The request's fields. */
  readonly request: readonly Field[];
  /** `null` when the chip sends nothing back (Reboot, RESET). */
  readonly reply: ReplySpec | null;
  /** Request fields the reply must repeat verbatim. */
  readonly echo: readonly string[];
  /** Loaders that implement the command. */
  readonly support: readonly Personality[];
  /** The reply is sent at the baud rate the command sets (SetBaudRate). */
  readonly replyAtNewBaud?: boolean;
}

const ALL: readonly Personality[] = PERSONALITIES;
const FULL: readonly Personality[] = ["FULL"];

const u8 = (name: string): Field => ({ name, type: "u8" });
const u16 = (name: string): Field => ({ name, type: "u16" });
const u32 = (name: string): Field => ({ name, type: "u32" });
const bytes = (name: string, length?: number): Field => ({ name, type: "bytes", length });

/** Names of the commands in {@link COMMANDS}. */
export type CommandName =
  | "LinkCheck"
  | "WriteReg"
  | "ReadReg"
  | "Reboot"
  | "SetBaudRate"
  | "CheckCRC"
  | "ReadBootVersion"
  | "Reset"
  | "StayRom"
  | "FlashWrite"
  | "FlashWrite4K"
  | "FlashRead"
  | "FlashRead4K"
  | "FlashEraseAll"
  | "FlashErase4K"
  | "FlashReadSR"
  | "FlashWriteSR"
  | "FlashGetMID"
  | "FlashErase";

/**
 * The table. Sources per row are in docs/uart.md §4.1–§4.16.
 *
 * @example
 * ```ts
 * COMMANDS.FlashRead4K.frame; // "long"
 * COMMANDS.FlashRead4K.support; // ["FULL", "BASIC_TUYA", "BASIC_BEKEN"]
 * ```
 */
export const COMMANDS: { readonly [N in CommandName]: CommandSpec & { readonly name: N } } = {
  LinkCheck: {
    name: "LinkCheck",
    code: 0x00,
    frame: "short",
    request: [],
    reply: { code: 0x01, fields: [u8("ok")] },
    echo: [],
    support: ALL,
  },
  WriteReg: {
    name: "WriteReg",
    code: 0x01,
    frame: "short",
    request: [u32("addr"), u32("value")],
    reply: { code: 0x01, fields: [u32("addr"), u32("value")] },
    echo: ["addr", "value"],
    support: FULL,
  },
  ReadReg: {
    name: "ReadReg",
    code: 0x03,
    frame: "short",
    request: [u32("addr")],
    reply: { code: 0x03, fields: [u32("addr"), u32("value")] },
    echo: ["addr"],
    support: FULL,
  },
  Reboot: {
    name: "Reboot",
    code: 0x0e,
    frame: "short",
    request: [u8("magic")],
    reply: null,
    echo: [],
    support: ALL,
  },
  SetBaudRate: {
    name: "SetBaudRate",
    code: 0x0f,
    frame: "short",
    request: [u32("baud"), u8("delay")],
    reply: { code: 0x0f, fields: [u32("baud"), u8("delay")] },
    echo: ["baud", "delay"],
    support: ALL,
    replyAtNewBaud: true,
  },
  CheckCRC: {
    name: "CheckCRC",
    code: 0x10,
    frame: "short",
    request: [u32("start"), u32("end")],
    reply: { code: 0x10, fields: [u32("crc")] },
    echo: [],
    support: ALL,
  },
  ReadBootVersion: {
    name: "ReadBootVersion",
    code: 0x11,
    frame: "short",
    request: [],
    reply: { code: 0x11, fields: [bytes("version")] },
    echo: [],
    support: ["BASIC_TUYA"],
  },
  Reset: {
    name: "Reset",
    code: 0x70,
    frame: "short",
    request: [u32("magic")],
    reply: null,
    echo: [],
    support: FULL,
  },
  StayRom: {
    name: "StayRom",
    code: 0xaa,
    frame: "short",
    request: [u8("magic")],
    reply: { code: 0xaa, fields: [u8("magic")] },
    echo: ["magic"],
    support: FULL,
  },
  FlashWrite: {
    name: "FlashWrite",
    code: 0x06,
    frame: "long",
    request: [u32("addr"), bytes("data")],
    reply: { code: 0x06, fields: [u32("addr"), u8("count")] },
    echo: ["addr"],
    support: ALL,
  },
  FlashWrite4K: {
    name: "FlashWrite4K",
    code: 0x07,
    frame: "long",
    request: [u32("addr"), bytes("data", 4096)],
    reply: { code: 0x07, fields: [u32("addr")] },
    echo: ["addr"],
    support: ALL,
  },
  FlashRead: {
    name: "FlashRead",
    code: 0x08,
    frame: "long",
    request: [u32("addr"), u16("length")],
    reply: { code: 0x08, fields: [u32("addr"), bytes("data")] },
    echo: ["addr"],
    support: FULL,
  },
  FlashRead4K: {
    name: "FlashRead4K",
    code: 0x09,
    frame: "long",
    request: [u32("addr")],
    reply: { code: 0x09, fields: [u32("addr"), bytes("data", 4096)] },
    echo: ["addr"],
    support: ALL,
  },
  FlashEraseAll: {
    name: "FlashEraseAll",
    code: 0x0a,
    frame: "long",
    request: [u8("arg")],
    reply: { code: 0x0a, fields: [u8("arg")] },
    echo: [],
    support: FULL,
  },
  FlashErase4K: {
    name: "FlashErase4K",
    code: 0x0b,
    frame: "long",
    request: [u32("addr")],
    reply: { code: 0x0b, fields: [u32("addr")] },
    echo: ["addr"],
    support: FULL,
  },
  FlashReadSR: {
    name: "FlashReadSR",
    code: 0x0c,
    frame: "long",
    request: [u8("cmd")],
    reply: { code: 0x0c, fields: [u8("cmd"), u8("value")] },
    echo: ["cmd"],
    support: FULL,
  },
  FlashWriteSR: {
    name: "FlashWriteSR",
    code: 0x0d,
    frame: "long",
    request: [u8("cmd"), bytes("value")],
    reply: { code: 0x0d, fields: [u8("cmd"), bytes("value")] },
    echo: ["cmd", "value"],
    support: FULL,
  },
  FlashGetMID: {
    name: "FlashGetMID",
    code: 0x0e,
    frame: "long",
    request: [u32("spiCmd")],
    reply: { code: 0x0e, fields: [u8("pad"), bytes("id", 3)] },
    echo: [],
    support: FULL,
  },
  FlashErase: {
    name: "FlashErase",
    code: 0x0f,
    frame: "long",
    request: [u8("sizeCmd"), u32("addr")],
    reply: { code: 0x0f, fields: [u8("sizeCmd"), u32("addr")] },
    echo: ["sizeCmd", "addr"],
    support: ALL,
  },
};

/** Status byte of a long reply meaning "unknown command" (docs/uart.md §2.5). */
export const STATUS_UNKNOWN_COMMAND = LOADER_STATUS.UNKNOWN_COMMAND;

/** FlashErase size codes: the SPI NOR erase opcodes (docs/uart.md §4.11). */
export const ERASE_4K = SPI_OP.ERASE_4K;
/** 64 KiB block erase opcode. */
export const ERASE_64K = SPI_OP.ERASE_64K;

/** Look a command up by its dispatch key (frame kind, opcode), as the chip does. */
export function commandByKey(frame: FrameKind, code: number): CommandSpec | undefined {
  return BY_KEY.get(`${frame}:${code}`);
}

const BY_KEY = new Map<string, CommandSpec>(
  Object.values(COMMANDS).map((c) => [`${c.frame}:${c.code}`, c]),
);

/**
 * The BK7236/BK7258 loaders' BL2 link check: short request code 0x02, answered with a short
 * reply of code 0x03 and payload `00` (not part of {@link COMMANDS}: no other loader knows it).
 */
export const BL2_LINK_CHECK = { code: 0x02, replyCode: 0x03 } as const;
