/**
 * Encoding and decoding of the boot-UART frames, driven entirely by {@link COMMANDS}.
 * Pure functions: used by the host to build requests and check replies, and by the emulator
 * to parse requests and build replies.
 *
 * @module
 */

import { concat } from "../bytes.ts";
import { hexByte } from "../hex.ts";
import type { CommandSpec, Field, FrameKind, ReplyValues, RequestValues } from "./table.ts";

export { concat };

/**
 * Values of a payload's fields, untyped: integers as numbers, byte strings as Uint8Array. A
 * command's own fields are typed by {@link RequestValues} and {@link ReplyValues}.
 */
export type Values = Record<string, number | Uint8Array>;

const REQ_SHORT = [0x01, 0xe0, 0xfc];
const RSP_HEADER = [0x04, 0x0e];

function fieldSize(f: Field, remaining: number): number {
  switch (f.type) {
    case "u8":
      return 1;
    case "u16":
      return 2;
    case "u32":
      return 4;
    case "bytes":
      return f.length ?? remaining;
  }
}

/** Serialise `values` according to `fields`. Throws on a missing or mis-sized field. */
export function encodeFields(fields: readonly Field[], values: Values): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of fields) {
    const v = values[f.name];
    if (v === undefined) throw new TypeError(`missing field ${f.name}`);
    if (f.type === "bytes") {
      if (!(v instanceof Uint8Array)) throw new TypeError(`field ${f.name} must be bytes`);
      if (f.length !== undefined && v.length !== f.length) {
        throw new TypeError(`field ${f.name} must be ${f.length} bytes, got ${v.length}`);
      }
      parts.push(v);
    } else {
      if (typeof v !== "number") throw new TypeError(`field ${f.name} must be a number`);
      const n = fieldSize(f, 0);
      const b = new Uint8Array(n);
      let x = v >>> 0;
      for (let i = 0; i < n; i++, x >>>= 8) b[i] = x & 0xff;
      parts.push(b);
    }
  }
  return concat(parts);
}

/**
 * Parse `data` according to `fields`. Returns `undefined` when the length does not fit the
 * layout (too short, or bytes left over after a layout with no open-ended field).
 */
export function decodeFields(fields: readonly Field[], data: Uint8Array): Values | undefined {
  const out: Values = {};
  let at = 0;
  for (const f of fields) {
    const n = fieldSize(f, data.length - at);
    if (at + n > data.length) return undefined;
    if (f.type === "bytes") out[f.name] = data.slice(at, at + n);
    else {
      let x = 0;
      for (let i = n - 1; i >= 0; i--) x = x * 256 + data[at + i];
      out[f.name] = x;
    }
    at += n;
  }
  return at === data.length ? out : undefined;
}

/**
 * Parse a request payload of `spec` (emulator side), typed as that command's request; undefined
 * when the payload does not fit its layout.
 */
export function decodeRequest<C extends CommandSpec>(
  spec: C,
  payload: Uint8Array,
): RequestValues<C> | undefined {
  // decodeFields checked the payload against spec.request, the field list the type is read from
  return decodeFields(spec.request, payload) as RequestValues<C> | undefined;
}

/** Parse a reply payload of `spec`, typed as that command's reply; undefined when it does not fit. */
export function decodeReply<C extends CommandSpec>(spec: C, payload: Uint8Array): ReplyValues<C> | undefined {
  if (!spec.reply) return undefined;
  // decodeFields checked the payload against spec.reply.fields, the list the type is read from
  return decodeFields(spec.reply.fields, payload) as ReplyValues<C> | undefined;
}

/** Wrap a command byte and payload in a host frame of the given kind. */
export function frameRequest(kind: FrameKind, code: number, payload: Uint8Array): Uint8Array {
  const len = payload.length + 1;
  if (kind === "short" && len < 0xff) {
    return concat([Uint8Array.from([...REQ_SHORT, len, code]), payload]);
  }
  return concat([Uint8Array.from([...REQ_SHORT, 0xff, 0xf4, len & 0xff, len >> 8, code]), payload]);
}

/**
 * Build the request frame for a command.
 *
 * @example
 * ```ts
 * import { COMMANDS } from "./table.ts";
 * encodeRequest(COMMANDS.LinkCheck, {}); // 01 e0 fc 01 00
 * encodeRequest(COMMANDS.FlashRead4K, { addr: 0x11000 }); // 01 e0 fc ff f4 05 00 09 00 10 01 00
 * ```
 */
export function encodeRequest<C extends CommandSpec>(spec: C, values: RequestValues<C>): Uint8Array {
  return frameRequest(spec.frame, spec.code, encodeFields(spec.request, values));
}

/** A reply frame as it came off the wire. */
export interface ReplyFrame {
  /** Short or long frame. */
  kind: FrameKind;
  /** RSP byte. */
  code: number;
  /** Status byte (long replies only). */
  status?: number;
  /** Payload after RSP (short) or after STATUS (long). */
  payload: Uint8Array;
  /** Every byte of the frame. */
  raw: Uint8Array;
}

/** Build the chip's reply frame bytes. */
export function frameReply(kind: FrameKind, code: number, payload: Uint8Array, status = 0): Uint8Array {
  if (kind === "short") {
    return concat([Uint8Array.from([...RSP_HEADER, payload.length + 4, 0x01, 0xe0, 0xfc, code]), payload]);
  }
  const len = payload.length + 2;
  return concat([
    Uint8Array.from([...RSP_HEADER, 0xff, 0x01, 0xe0, 0xfc, 0xf4, len & 0xff, len >> 8, code, status]),
    payload,
  ]);
}

/** Build the chip's reply to `spec` carrying `values` (emulator side). */
export function encodeReply<C extends CommandSpec>(spec: C, values: ReplyValues<C>, status = 0): Uint8Array {
  if (!spec.reply) throw new TypeError(`${spec.name} has no reply`);
  return frameReply(spec.frame, spec.reply.code, encodeFields(spec.reply.fields, values), status);
}

/** A host frame as the chip parsed it. */
export interface RequestFrame {
  /** Short or long frame. */
  kind: FrameKind;
  /** The command byte. */
  code: number;
  /** The bytes after the command byte. */
  payload: Uint8Array;
}

/** The outcome of checking a reply frame against the command that was sent. */
export type ReplyCheck<V = Values> =
  | { ok: true; values: V }
  /** The frame is some other command's reply (stale or misrouted). */
  | { ok: false; reason: "other" | "layout" | "echo"; detail: string }
  /** A long reply with a non-zero status. */
  | { ok: false; reason: "status"; status: number; detail: string };

/**
 * Check `frame` against the command `spec` that produced `request`: frame kind, RSP byte,
 * layout, status and echoed fields.
 */
export function checkReply<C extends CommandSpec>(
  spec: C,
  request: Values,
  frame: ReplyFrame,
): ReplyCheck<ReplyValues<C>> {
  const rs = spec.reply;
  if (!rs) return { ok: false, reason: "other", detail: `${spec.name} expects no reply` };
  if (frame.kind !== spec.frame || frame.code !== rs.code) {
    return { ok: false, reason: "other", detail: `got ${frame.kind} reply 0x${hexByte(frame.code)}` };
  }
  if (frame.kind === "long" && frame.status !== 0) {
    return {
      ok: false,
      reason: "status",
      status: frame.status ?? -1,
      detail: `${spec.name} status ${frame.status}`,
    };
  }
  const values = decodeReply(spec, frame.payload);
  if (!values) {
    return {
      ok: false,
      reason: "layout",
      detail: `${spec.name} reply of ${frame.payload.length} payload bytes`,
    };
  }
  const got: Values = values;
  for (const name of spec.echo) {
    if (!sameValue(got[name], request[name])) {
      return { ok: false, reason: "echo", detail: `${spec.name} echoed ${name} does not match` };
    }
  }
  return { ok: true, values };
}

function sameValue(a: number | Uint8Array | undefined, b: number | Uint8Array | undefined): boolean {
  if (typeof a === "number" || typeof b === "number") return a === b;
  if (!a || !b || a.length !== b.length) return false;
  return a.every((x, i) => x === b[i]);
}
