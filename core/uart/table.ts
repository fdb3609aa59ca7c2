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

/** A field of a request or reply payload, named `N`. Integers are little-endian. */
export type Field<N extends string = string> =
  | { readonly name: N; readonly type: "u8" | "u16" | "u32" }
  /** A byte string: fixed `length`, or the rest of the payload when `length` is absent. */
  | { readonly name: N; readonly type: "bytes"; readonly length?: number };

/** What a field carries: a byte string as a Uint8Array, an integer as a number. */
export type FieldValue<F extends Field> = F extends { readonly type: "bytes" } ? Uint8Array : number;

/** The values of a list of fields, by name, each of its field's type. */
export type FieldValues<Fs extends readonly Field[]> = {
  [F in Fs[number] as F["name"]]: FieldValue<F>;
};

/**
 * The request fields of command `C`, typed from its row: `RequestValues<typeof
 * COMMANDS.ReadReg>` is `{ addr: number }`.
 */
export type RequestValues<C extends CommandSpec> = C extends CommandSpec ? FieldValues<C["request"]> : never;

/**
 * The reply fields of command `C`, typed from its row: `ReplyValues<typeof
 * COMMANDS.FlashRead4K>` is `{ addr: number; data: Uint8Array }`; empty for a command the chip
 * does not answer.
 */
export type ReplyValues<C extends CommandSpec> = C extends
  { readonly reply: { readonly fields: infer Fs extends readonly Field[] } } ? FieldValues<Fs>
  : Record<never, never>;

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
const BASIC_TUYA: readonly Personality[] = ["BASIC_TUYA"];

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
 * The table. Sources per row are in docs/uart.md §4.1–§4.16. Rows are typed, so a command's
 * request and reply fields are too ({@link RequestValues}, {@link ReplyValues}). Written as
 * plain literals `as const` so that every row keeps its field names and types while the type
 * stays one a package registry can read without running the type checker (no helper calls).
 *
 * @example
 * ```ts
 * COMMANDS.FlashRead4K.frame; // "long"
 * COMMANDS.FlashRead4K.support; // ["FULL", "BASIC_TUYA", "BASIC_BEKEN"]
 * ```
 */
export const COMMANDS = {
  LinkCheck: {
    name: "LinkCheck",
    code: 0x00,
    frame: "short",
    request: [],
    reply: { code: 0x01, fields: [{ name: "ok", type: "u8" }] },
    echo: [],
    support: ALL,
  },
  WriteReg: {
    name: "WriteReg",
    code: 0x01,
    frame: "short",
    request: [{ name: "addr", type: "u32" }, { name: "value", type: "u32" }],
    reply: { code: 0x01, fields: [{ name: "addr", type: "u32" }, { name: "value", type: "u32" }] },
    echo: ["addr", "value"],
    support: FULL,
  },
  ReadReg: {
    name: "ReadReg",
    code: 0x03,
    frame: "short",
    request: [{ name: "addr", type: "u32" }],
    reply: { code: 0x03, fields: [{ name: "addr", type: "u32" }, { name: "value", type: "u32" }] },
    echo: ["addr"],
    support: FULL,
  },
  Reboot: {
    name: "Reboot",
    code: 0x0e,
    frame: "short",
    request: [{ name: "magic", type: "u8" }],
    reply: null,
    echo: [],
    support: ALL,
  },
  SetBaudRate: {
    name: "SetBaudRate",
    code: 0x0f,
    frame: "short",
    request: [{ name: "baud", type: "u32" }, { name: "delay", type: "u8" }],
    reply: { code: 0x0f, fields: [{ name: "baud", type: "u32" }, { name: "delay", type: "u8" }] },
    echo: ["baud", "delay"],
    support: ALL,
    replyAtNewBaud: true,
  },
  CheckCRC: {
    name: "CheckCRC",
    code: 0x10,
    frame: "short",
    request: [{ name: "start", type: "u32" }, { name: "end", type: "u32" }],
    reply: { code: 0x10, fields: [{ name: "crc", type: "u32" }] },
    echo: [],
    support: ALL,
  },
  ReadBootVersion: {
    name: "ReadBootVersion",
    code: 0x11,
    frame: "short",
    request: [],
    reply: { code: 0x11, fields: [{ name: "version", type: "bytes" }] },
    echo: [],
    support: BASIC_TUYA,
  },
  Reset: {
    name: "Reset",
    code: 0x70,
    frame: "short",
    request: [{ name: "magic", type: "u32" }],
    reply: null,
    echo: [],
    support: FULL,
  },
  StayRom: {
    name: "StayRom",
    code: 0xaa,
    frame: "short",
    request: [{ name: "magic", type: "u8" }],
    reply: { code: 0xaa, fields: [{ name: "magic", type: "u8" }] },
    echo: ["magic"],
    support: FULL,
  },
  FlashWrite: {
    name: "FlashWrite",
    code: 0x06,
    frame: "long",
    request: [{ name: "addr", type: "u32" }, { name: "data", type: "bytes" }],
    reply: { code: 0x06, fields: [{ name: "addr", type: "u32" }, { name: "count", type: "u8" }] },
    echo: ["addr"],
    support: ALL,
  },
  FlashWrite4K: {
    name: "FlashWrite4K",
    code: 0x07,
    frame: "long",
    request: [{ name: "addr", type: "u32" }, { name: "data", type: "bytes", length: 4096 }],
    reply: { code: 0x07, fields: [{ name: "addr", type: "u32" }] },
    echo: ["addr"],
    support: ALL,
  },
  FlashRead: {
    name: "FlashRead",
    code: 0x08,
    frame: "long",
    request: [{ name: "addr", type: "u32" }, { name: "length", type: "u16" }],
    reply: { code: 0x08, fields: [{ name: "addr", type: "u32" }, { name: "data", type: "bytes" }] },
    echo: ["addr"],
    support: FULL,
  },
  FlashRead4K: {
    name: "FlashRead4K",
    code: 0x09,
    frame: "long",
    request: [{ name: "addr", type: "u32" }],
    reply: {
      code: 0x09,
      fields: [{ name: "addr", type: "u32" }, { name: "data", type: "bytes", length: 4096 }],
    },
    echo: ["addr"],
    support: ALL,
  },
  FlashEraseAll: {
    name: "FlashEraseAll",
    code: 0x0a,
    frame: "long",
    request: [{ name: "arg", type: "u8" }],
    reply: { code: 0x0a, fields: [{ name: "arg", type: "u8" }] },
    echo: [],
    support: FULL,
  },
  FlashErase4K: {
    name: "FlashErase4K",
    code: 0x0b,
    frame: "long",
    request: [{ name: "addr", type: "u32" }],
    reply: { code: 0x0b, fields: [{ name: "addr", type: "u32" }] },
    echo: ["addr"],
    support: FULL,
  },
  FlashReadSR: {
    name: "FlashReadSR",
    code: 0x0c,
    frame: "long",
    request: [{ name: "cmd", type: "u8" }],
    reply: { code: 0x0c, fields: [{ name: "cmd", type: "u8" }, { name: "value", type: "u8" }] },
    echo: ["cmd"],
    support: FULL,
  },
  FlashWriteSR: {
    name: "FlashWriteSR",
    code: 0x0d,
    frame: "long",
    request: [{ name: "cmd", type: "u8" }, { name: "value", type: "bytes" }],
    reply: { code: 0x0d, fields: [{ name: "cmd", type: "u8" }, { name: "value", type: "bytes" }] },
    echo: ["cmd", "value"],
    support: FULL,
  },
  FlashGetMID: {
    name: "FlashGetMID",
    code: 0x0e,
    frame: "long",
    request: [{ name: "spiCmd", type: "u32" }],
    reply: { code: 0x0e, fields: [{ name: "pad", type: "u8" }, { name: "id", type: "bytes", length: 3 }] },
    echo: [],
    support: FULL,
  },
  FlashErase: {
    name: "FlashErase",
    code: 0x0f,
    frame: "long",
    request: [{ name: "sizeCmd", type: "u8" }, { name: "addr", type: "u32" }],
    reply: { code: 0x0f, fields: [{ name: "sizeCmd", type: "u8" }, { name: "addr", type: "u32" }] },
    echo: ["sizeCmd", "addr"],
    support: ALL,
  },
} as const satisfies { readonly [N in CommandName]: CommandSpec & { readonly name: N } };

/** The type of {@link COMMANDS}: every row keeps its own field names and types. */
export type CommandTable = typeof COMMANDS;

/** One row of {@link COMMANDS}, typed (a union over the commands). */
export type Command = CommandTable[CommandName];

/** Status byte of a long reply meaning "unknown command" (docs/uart.md §2.5). */
export const STATUS_UNKNOWN_COMMAND = LOADER_STATUS.UNKNOWN_COMMAND;

/** FlashErase size codes: the SPI NOR erase opcodes (docs/uart.md §4.11). */
export const ERASE_4K = SPI_OP.ERASE_4K;
/** 64 KiB block erase opcode. */
export const ERASE_64K = SPI_OP.ERASE_64K;

/** Look a command up by its dispatch key (frame kind, opcode), as the chip does. */
export function commandByKey(frame: FrameKind, code: number): Command | undefined {
  return BY_KEY.get(`${frame}:${code}`);
}

const BY_KEY = new Map<string, Command>(
  Object.values(COMMANDS).map((c) => [`${c.frame}:${c.code}`, c]),
);

/**
 * The BK7236/BK7258 loaders' BL2 link check: short request code 0x02, answered with a short
 * reply of code 0x03 and payload `00` (not part of {@link COMMANDS}: no other loader knows it).
 */
export const BL2_LINK_CHECK = { code: 0x02, replyCode: 0x03 } as const;
