/**
 * One-line descriptions of recorded wire events for divergence reports: host request frames
 * named through the boot-protocol table, trace events, modem-line changes and CH341A packet
 * streams.
 *
 * @module
 */

import { hexByte, toHex } from "../hex.ts";
import type { ModemSignals } from "../io/link.ts";
import type { TraceEvent } from "../io/trace.ts";
import { CH341_COMMAND_NAMES } from "../io/ch341a_protocol.ts";
import { decodeFields } from "../uart/codec.ts";
import { commandByKey } from "../uart/table.ts";

/**
 * One-line description of a host request frame: the command name from the table and its
 * fields (`FlashRead4K addr=0x12000`), the text for ASCII (`text "reboot\r\n"`), or "bytes".
 */
export function describeRequest(frame: Uint8Array): string {
  if (frame.length >= 5 && frame[0] === 0x01 && frame[1] === 0xe0 && frame[2] === 0xfc) {
    const long = frame[3] === 0xff;
    if (long && frame.length < 8) return "long frame (truncated)";
    const code = long ? frame[7] : frame[4];
    const len = long ? frame[5] | (frame[6] << 8) : frame[3];
    const payload = frame.subarray(long ? 8 : 5, (long ? 7 : 4) + len);
    const spec = commandByKey(long ? "long" : "short", code);
    if (!spec) return `unknown ${long ? "long" : "short"} command 0x${hexByte(code)}`;
    const v = decodeFields(spec.request, payload);
    if (!v) return `${spec.name} (payload of ${payload.length} bytes does not fit its layout)`;
    const fields = Object.entries(v).map(([k, x]) =>
      typeof x === "number"
        ? `${k}=0x${x.toString(16)}`
        : `${k}=${x.length <= 4 ? toHex(x) : `<${x.length} bytes>`}`
    );
    return [spec.name, ...fields].join(" ");
  }
  if (frame.length > 0 && frame.every((b) => b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f))) {
    return `text ${JSON.stringify(new TextDecoder().decode(frame))}`;
  }
  return `${frame.length} bytes`;
}

/** What a recorded event is, for "where the recording has …". */
export function describeEvent(e: TraceEvent | undefined): string {
  if (!e) return "the end of the recording";
  switch (e.kind) {
    case "tx":
      return `a write of ${describeRequest(e.data)} (line ${e.line})`;
    case "rx":
      return `a reply of ${e.data.length} bytes (line ${e.line})`;
    case "baud":
      return `a baud change to ${e.baud} (line ${e.line})`;
    case "signals":
      return `modem lines ${signalText(e)} (line ${e.line})`;
    case "usb-out":
      return `a USB OUT of ${e.data.length} bytes on endpoint ${e.ep} (line ${e.line})`;
    case "usb-in":
      return `a USB IN of ${e.length} bytes on endpoint ${e.ep} (line ${e.line})`;
    default:
      return `${e.kind} (line ${e.line})`;
  }
}

/** Modem-line levels as `DTR=1 RTS=0`. */
export function signalText(s: ModemSignals): string {
  const parts: string[] = [];
  if (s.dtr !== undefined) parts.push(`DTR=${s.dtr ? 1 : 0}`);
  if (s.rts !== undefined) parts.push(`RTS=${s.rts ? 1 : 0}`);
  return parts.join(" ") || "(none)";
}

/** One-line description of a CH341A bulk OUT packet stream. */
export function describeCh341(data: Uint8Array): string {
  const names: string[] = [];
  for (let i = 0; i < data.length; i += 32) {
    const name = CH341_COMMAND_NAMES[data[i]] ?? `0x${hexByte(data[i])}`;
    if (names[names.length - 1] !== name) names.push(name);
  }
  return `${data.length} bytes: ${names.join(", ")}`;
}
