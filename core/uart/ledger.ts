/**
 * The boot protocol has no checksum: a bit flipped on the way to the chip can turn an address
 * into another one, or a read into an erase, and the chip carries it out. It still says what
 * it did, since flash-changing replies echo their address. The {@link ChangeLedger} remembers
 * the flash-changing requests the host actually sent and which of them were answered; the chip
 * answers each request once, so a flash-changing reply that matches no request still waiting for
 * its answer means the chip changed flash nobody asked it to change (also where the host had
 * asked for that very change earlier and heard its answer then), and the range is named
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
  readonly #recent: { key: string; answered: boolean }[] = [];
  readonly #size: number;
  #lastHeard: string | null = null;

  /** Remember the last `size` flash-changing requests (default 32). */
  constructor(size = 32) {
    this.#size = size;
  }

  /** Note a request as written. */
  sent(spec: CommandSpec, values: Values): void {
    if (extent(spec.name, values) === undefined) return;
    this.#recent.push({ key: keyOf(spec.name, values), answered: false });
    if (this.#recent.length > this.#size) this.#recent.shift();
  }

  /**
   * Note the awaited reply to the request last written. The chip carries out requests one at a
   * time in the order they arrive and answers each before reading the next, so no earlier request
   * can be answered after this one: every request noted so far is settled.
   */
  answered(frame: ReplyFrame, spec?: CommandSpec, values?: Values): void {
    this.#lastHeard = frameKey(frame);
    const own = spec && values && extent(spec.name, values) !== undefined ? keyOf(spec.name, values) : null;
    const last = this.#recent.length - 1;
    this.#recent.forEach((r, i) => {
      if (!r.answered && !(i === last && r.key === own)) this.lost++;
      r.answered = true;
    });
  }

  /** Flash-changing requests settled without their reply: each may have changed flash anywhere. */
  lost = 0;

  /** Mark the oldest unanswered request `key` answered; false when none waits. */
  #take(key: string): boolean {
    const open = this.#recent.find((r) => r.key === key && !r.answered);
    if (open) open.answered = true;
    return open !== undefined;
  }

  /**
   * Look at a reply that is not the one awaited. Returns the error to raise when it reports a
   * flash change the host never requested, else null (the late answer of a request still
   * waiting for one, a copy of the reply heard just before, or nothing that changes flash).
   */
  check(frame: ReplyFrame, flashSize?: number): FlashError | null {
    const heard = frameKey(frame);
    // the same frame twice in a row is one answer heard twice (a line that repeats bytes): no host
    // can tell it from the chip doing that change again, and the host's own verify follows
    const repeated = heard === this.#lastHeard;
    this.#lastHeard = heard;
    if (frame.kind !== "long" || frame.status !== 0) return null;
    const spec = commandByKey("long", frame.code);
    if (!spec?.reply) return null;
    const values = decodeFields(spec.reply.fields, frame.payload);
    if (!values) return null;
    let range = extent(spec.name, values);
    if (range === undefined || repeated || this.#take(keyOf(spec.name, values))) return null;
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

function frameKey(frame: ReplyFrame): string {
  return `${frame.kind}:${frame.code}:${frame.status}:${Array.from(frame.payload).join(",")}`;
}
