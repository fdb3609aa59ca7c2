/**
 * How long the client waits for a reply: the chip's own budget for the command (a CRC at the
 * chip's rate, an erase, a baud switch) plus the wire time of request and reply at the current
 * rate, and the test that tells a one-byte "unknown command" answer from a real reply.
 *
 * @module
 */

import { crcBudgetMs } from "../timing.ts";
import type { Values } from "./codec.ts";
import { type CommandSpec, ERASE_64K, type Field } from "./table.ts";

/**
 * How long to wait for the reply to `spec`, in ms after the request was handed to the link:
 * the chip-side budget for the command plus the wire time of request and reply at `baud`.
 *
 * @example
 * ```ts
 * import { COMMANDS } from "./table.ts";
 * replyTimeoutMs(COMMANDS.CheckCRC, { start: 0, end: 0x200000 }, 921600); // ≈ 8 000
 * ```
 */
export function replyTimeoutMs(spec: CommandSpec, values: Values, baud: number): number {
  const wire = (bytes: number) => (bytes * 10 * 1000) / baud;
  return chipBudgetMs(spec, values) + wire(requestBytes(spec, values) + replyBytes(spec, values));
}

function chipBudgetMs(spec: CommandSpec, values: Values): number {
  switch (spec.name) {
    case "CheckCRC": {
      const len = Math.abs(num(values.end) - num(values.start)) + 1;
      return crcBudgetMs(len);
    }
    case "FlashErase":
      return num(values.sizeCmd) === ERASE_64K ? 3000 : 1000;
    case "FlashEraseAll":
      return 60_000;
    case "SetBaudRate":
      return 1000 + num(values.delay);
    case "LinkCheck":
      return 200;
    default:
      return 1000;
  }
}

function num(v: number | Uint8Array | undefined): number {
  return typeof v === "number" ? v : 0;
}

function fieldsBytes(fields: readonly Field[], values: Values, open: number): number {
  let n = 0;
  for (const f of fields) {
    if (f.type === "bytes") {
      const v = values[f.name];
      n += f.length ?? (v instanceof Uint8Array ? v.length : open);
    } else n += f.type === "u8" ? 1 : f.type === "u16" ? 2 : 4;
  }
  return n;
}

function requestBytes(spec: CommandSpec, values: Values): number {
  const payload = fieldsBytes(spec.request, values, 0);
  return spec.frame === "short" ? 5 + payload : 8 + payload;
}

function replyBytes(spec: CommandSpec, values: Values): number {
  if (!spec.reply) return 0;
  const open = spec.name === "FlashRead" ? num(values.length) : 0;
  const payload = fieldsBytes(spec.reply.fields, {}, open);
  return spec.frame === "short" ? 7 + payload : 11 + payload;
}

/**
 * Whether a one-byte `07` payload cannot be a real answer to `spec`: its layout needs more
 * bytes, or it is a free-form string (ReadBootVersion on a BootROM, docs/uart.md §4.7).
 */
export function unknownCommandShape(spec: CommandSpec): boolean {
  if (!spec.reply) return false;
  const fields = spec.reply.fields;
  const open = fields.some((f) => f.type === "bytes" && f.length === undefined);
  return open || fieldsBytes(fields, {}, 0) > 1;
}
