/**
 * The boot protocol has no checksum: a bit flipped on the way to the chip can turn an address
 * into another one, or a read into an erase, and the chip carries it out. It still says what
 * it did, since flash-changing replies echo their address. The {@link ChangeLedger} remembers
 * the flash-changing requests the host actually sent; a flash-changing reply that matches none
 * of them means the chip changed flash nobody asked it to change, and the range is named
 * (wrapped to the flash size, as the loader wraps addresses, once the size is known).
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { hex } from "../hex.ts";
import { decodeFields, type ReplyFrame, type Values } from "./codec.ts";
import { commandByKey, type CommandSpec } from "./table.ts";

/** Bytes a flash-changing command touches, by command; `null` for the whole chip. */
function extent(name: string, v: Values): { start: number; len: number } | null | undefined {
  const addr = typeof v.addr === "number" ? v.addr >>> 0 : 0;
  switch (name) {
    case "FlashErase": {
      const len = v.sizeCmd === 0xd8 ? 0x10000 : v.sizeCmd === 0x52 ? 0x8000 : 0x1000;
      return { start: addr - (addr % len), len };
    }
    case "FlashErase4K":
    case "FlashWrite4K":
      return { start: addr - (addr % 0x1000), len: 0x1000 };
    case "FlashWrite":
      return { start: addr - (addr % 0x100), len: 0x200 };
    case "FlashEraseAll":
      return null;
    default:
      return undefined;
  }
}

function keyOf(name: string, v: Values): string {
  return `${name}:${typeof v.addr === "number" ? v.addr >>> 0 : "-"}:${
    typeof v.sizeCmd === "number" ? v.sizeCmd : "-"
  }`;
}

/** Recent flash-changing requests, and the check of unexpected replies against them. */
export class ChangeLedger {
  readonly #recent: string[] = [];
  readonly #size: number;

  /** Remember the last `size` flash-changing requests (default 32). */
  constructor(size = 32) {
    this.#size = size;
  }

  /** Note a request as written. */
  sent(spec: CommandSpec, values: Values): void {
    if (extent(spec.name, values) === undefined) return;
    this.#recent.push(keyOf(spec.name, values));
    if (this.#recent.length > this.#size) this.#recent.shift();
  }

  /**
   * Look at a reply that is not the one awaited. Returns the error to raise when it reports a
   * flash change the host never requested, else null (a stale reply, or nothing that changes
   * flash).
   */
  check(frame: ReplyFrame, flashSize?: number): FlashError | null {
    if (frame.kind !== "long" || frame.status !== 0) return null;
    const spec = commandByKey("long", frame.code);
    if (!spec?.reply) return null;
    const values = decodeFields(spec.reply.fields, frame.payload);
    if (!values) return null;
    let range = extent(spec.name, values);
    if (range === undefined || this.#recent.includes(keyOf(spec.name, values))) return null;
    // the loader decodes only the address bits the flash has
    if (range && flashSize) {
      range = range.len >= flashSize ? null : { start: range.start % flashSize, len: range.len };
    }
    const where = range === null
      ? "the whole chip"
      : `${hex(range.start)}..${hex(range.start + range.len - 1)}`;
    return new FlashError(
      "WRITE_FAILED",
      `the chip reports a ${spec.name}${
        typeof values.addr === "number" ? ` at ${hex(values.addr)}` : ""
      } that was never sent: a request was corrupted on the wire, and flash in ${where} may have changed`,
      "shorten the wires or lower --baud, then compare that range with the backup and write the backup's bytes back if it differs",
      {
        damage: range === null
          ? { start: 0, end: flashSize ?? 0x1_0000_0000 }
          : { start: range.start, end: range.start + range.len },
      },
    );
  }
}
