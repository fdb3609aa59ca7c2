/**
 * The host side of one boot-UART conversation: encode a command from the table, write it,
 * and pick its reply out of the byte stream, skipping garbage and stale frames. All waiting
 * goes through the link (`read` with a timeout, `clock.sleep`), so the same code runs on the
 * emulator's virtual clock and on a real port.
 *
 * @module
 */

import { ChipStatusError, FlashError } from "../errors.ts";
import type { WireStats } from "../target.ts";
import { type ByteLink, LinkClosedError } from "../io/link.ts";
import { checkReply, encodeRequest, type Values } from "./codec.ts";
import { ChangeLedger } from "./ledger.ts";
import { replyTimeoutMs, unknownCommandShape } from "./reply_timeout.ts";
import { MAX_REQUEST_FRAME, ReplyParser } from "./parser.ts";
import type { LoaderFamily } from "../chips/loaders.ts";
import {
  COMMANDS,
  type CommandSpec,
  type Personality,
  type ReplyValues,
  type RequestValues,
  STATUS_UNKNOWN_COMMAND,
} from "./table.ts";

export { replyTimeoutMs } from "./reply_timeout.ts";

/** One chunk of bytes seen on the wire, for tracing. */
export interface WireEvent {
  /** "out" = host to chip, "in" = chip to host. */
  dir: "out" | "in";
  /** The bytes, as written or as read. */
  data: Uint8Array;
  /** Link clock time (ms) when the chunk was written or read. */
  t: number;
}

/** Options of a {@link UartClient}. */
export interface UartClientOptions {
  /** Loader personality, when already known; commands it lacks are refused. */
  personality?: Personality | null;
  /** Called for every chunk written or read. */
  onWire?: (event: WireEvent) => void;
}

/** Options of one {@link UartClient.command} call. */
export interface CommandOptions {
  /** Reply timeout in ms, counted after the request was written (default: {@link replyTimeoutMs}). */
  timeoutMs?: number;
  /**
   * Runs between writing the request and waiting for the reply (SetBaudRate uses it to
   * reprogram the host UART before the chip answers at the new rate).
   */
  afterWrite?: () => Promise<void>;
  /**
   * Discard received bytes before writing (default true). The link-check loop turns it off,
   * since a late reply to an earlier attempt is as good as a reply to this one.
   */
  flushFirst?: boolean;
}

/**
 * A command/reply client over a {@link ByteLink}.
 *
 * @example
 * ```ts
 * import type { ByteLink } from "../io/link.ts";
 * import { COMMANDS } from "./table.ts";
 * declare const link: ByteLink;
 * const client = new UartClient(link);
 * const { value } = await client.command(COMMANDS.ReadReg, { addr: 0x800000 });
 * ```
 */
export class UartClient {
  /** The link the client talks over. */
  readonly link: ByteLink;
  /** Loader personality once known; `null` while detecting (nothing is refused then). */
  personality: Personality | null;
  /** Bytes out, bytes in and completed round trips since the client was made. */
  readonly stats: WireStats = { bytesOut: 0, bytesIn: 0, roundTrips: 0 };
  /**
   * Times {@link command} sends a request that got no reply (default 1). Only for idempotent
   * phases: {@link detect} raises it while it identifies; the flasher retries by itself.
   */
  attempts = 1;
  /** Flash size once the chip is identified; flash-change alarms wrap addresses to it. */
  flashSize: number | null = null;
  /** Frames received and ignored as stale or foreign since the client was made. */
  skippedFrames = 0;

  /** Flash-changing requests settled without their reply (see {@link ChangeLedger.lost}). */
  get unansweredChanges(): number {
    return this.#ledger.lost;
  }
  /**
   * The loader family once the chip is identified: it decides how the client recovers from a
   * request the loader may have received only in part.
   */
  family: LoaderFamily | null = null;
  /** Filler bytes sent to complete frames a loader may have been eating, since the client was made. */
  fillerBytes = 0;
  /** The last request that got no reply (the frame a loader may still be eating). */
  #unanswered: CommandSpec | null = null;
  /** Until the next fence is answered, a write reply for an unknown address is the filler's no-op. */
  #fillerWrites = false;
  readonly #parser = new ReplyParser();
  readonly #ledger = new ChangeLedger();
  /** How long to wait for a resynchronising LinkCheck before the next command; 0 when in step. */
  #fenceMs = 0;
  readonly #onWire?: (event: WireEvent) => void;
  #closed = false;

  /** A client on `link`; it does not link by itself (see `connect` in connect.ts). */
  constructor(link: ByteLink, options: UartClientOptions = {}) {
    this.link = link;
    this.personality = options.personality ?? null;
    this.#onWire = options.onWire;
  }

  /**
   * Send `spec` with `values` and return the decoded reply fields.
   *
   * Throws {@link FlashError} `UNSUPPORTED` (before writing) when the active personality
   * lacks the command, or when the chip answers "unknown command"; {@link ChipStatusError}
   * for a long reply with a non-zero status; `TIMEOUT` when no matching reply arrives.
   */
  async command<C extends CommandSpec>(
    spec: C,
    values: RequestValues<C>,
    options: CommandOptions = {},
  ): Promise<ReplyValues<C>> {
    if (!spec.reply) throw new TypeError(`${spec.name} has no reply; use send()`);
    const timeoutMs = options.timeoutMs ?? replyTimeoutMs(spec, values, this.link.baud);
    for (let attempt = 1;; attempt++) {
      if (this.#fenceMs > 0) await this.#resync();
      await this.#write(spec, values, options.flushFirst ?? true);
      if (options.afterWrite) await this.#io(options.afterWrite);
      const got = await this.#awaitReply(spec, values, timeoutMs);
      if (got) return got;
      this.#fenceMs = Math.max(this.#fenceMs, timeoutMs);
      this.#unanswered = spec;
      if (attempt >= this.attempts) throw this.#timeout(spec, timeoutMs);
    }
  }

  /**
   * After a timeout the unanswered request may still be answered, late, and a reply without an
   * echo (CheckCRC, FlashGetMID) would then pass for the next command's. The chip answers in
   * order, so a LinkCheck answered means nothing older is still on its way.
   */
  async #resync(): Promise<void> {
    const wait = this.#fenceMs;
    this.#fenceMs = 0;
    await this.#completeEatenFrame();
    const fence = COMMANDS.LinkCheck;
    await this.#write(fence, {}, true);
    if (await this.#awaitReply(fence, {}, wait)) this.#fillerWrites = false;
    else this.#fenceMs = wait;
  }

  /**
   * A loader whose parser never abandons a partial frame (T/U) treats everything after a
   * truncated request as the rest of that request, so a retry or a link check would only be
   * eaten. Before the fence the client sends as many filler bytes as the longest frame the
   * loader accepts: the eaten frame completes with filler, and what is left of the filler is
   * skipped as noise (it holds no `01 E0 FC`). The filler is 0xFF, so a write completed with it
   * programs nothing (NOR programming only clears bits), and 0x00 after an erase, so an erase
   * address completed with it falls below 0x11000, which these loaders refuse. After a CheckCRC
   * it is 0x00 too: the filler lands in the end address's top byte, and 0xFF there would ask
   * for the CRC of some 4 GiB through the address wrap, keeping the loader busy (and deaf) for
   * hours at its CRC speed; 0x00 makes the range end low, so it is short, or ends below its start
   * (docs/uart.md §6: empty in the emulator's model, no worse than 0xFF if a loader wraps). A
   * loader with a frame timeout has abandoned the partial frame during the reply timeout already; one that
   * does not refuse low addresses gets no filler (a 0x00-completed erase could hit sector 0):
   * there the fence alone runs, and the change ledger names what a completed frame changed.
   */
  async #completeEatenFrame(): Promise<void> {
    const spec = this.#unanswered;
    this.#unanswered = null;
    const f = this.family;
    if (!spec || !f || f.frameTimeoutMs !== null) return;
    const refusesLow = f.forbidden.answer === "status6" && f.forbidden.ranges.some((r) => r.start === 0);
    if (!refusesLow) return;
    const erase = spec.name === "FlashErase" || spec.name === "FlashErase4K" || spec.name === "FlashEraseAll";
    const zeros = erase || spec.name === "CheckCRC";
    const filler = new Uint8Array(MAX_REQUEST_FRAME).fill(zeros ? 0x00 : 0xff);
    this.#fillerWrites = !zeros;
    this.fillerBytes += filler.length;
    await this.writeRaw(filler);
  }

  /**
   * Write a request without waiting for its reply (read-ahead): the chip queues it behind the
   * reply it is sending. Received bytes are kept unless `flushFirst`, since they may be the
   * reply to an earlier posted request. Pair every post with a {@link receive}, in order.
   */
  async post<C extends CommandSpec>(
    spec: C,
    values: RequestValues<C>,
    options: { flushFirst?: boolean } = {},
  ): Promise<void> {
    if (!spec.reply) throw new TypeError(`${spec.name} has no reply; use send()`);
    await this.#write(spec, values, options.flushFirst ?? false);
  }

  /**
   * Wait for the reply to a request written with {@link post}; the timeout counts from now.
   * Throws like {@link command}.
   */
  async receive<C extends CommandSpec>(
    spec: C,
    values: RequestValues<C>,
    options: { timeoutMs?: number } = {},
  ): Promise<ReplyValues<C>> {
    const timeoutMs = options.timeoutMs ?? replyTimeoutMs(spec, values, this.link.baud);
    const got = await this.#awaitReply(spec, values, timeoutMs);
    if (got) return got;
    this.#fenceMs = Math.max(this.#fenceMs, timeoutMs);
    this.#unanswered = spec;
    throw this.#timeout(spec, timeoutMs);
  }

  #timeout(spec: CommandSpec, timeoutMs: number): FlashError {
    return new FlashError(
      "TIMEOUT",
      `no reply to ${spec.name} on ${this.link.name} within ${Math.round(timeoutMs)} ms`,
      "check TX/RX wiring and the 3.3 V supply; if the chip was reset it left the loader: run again",
    );
  }

  /**
   * Like {@link command} but returns `undefined` on timeout instead of throwing (used by
   * the link-check loop, where silence is the normal case).
   */
  async tryCommand<C extends CommandSpec>(
    spec: C,
    values: RequestValues<C>,
    options: CommandOptions = {},
  ): Promise<ReplyValues<C> | undefined> {
    if (!spec.reply) throw new TypeError(`${spec.name} has no reply; use send()`);
    const timeoutMs = options.timeoutMs ?? replyTimeoutMs(spec, values, this.link.baud);
    await this.#write(spec, values, options.flushFirst ?? true);
    if (options.afterWrite) await this.#io(options.afterWrite);
    return await this.#awaitReply(spec, values, timeoutMs);
  }

  /** Send a command the chip does not answer (Reboot, Reset). */
  async send<C extends CommandSpec>(spec: C, values: RequestValues<C>): Promise<void> {
    await this.#write(spec, values, false);
  }

  /** Write raw bytes that are not a protocol frame (the ASCII `reboot\r\n` for app firmware). */
  async writeRaw(data: Uint8Array): Promise<void> {
    this.#refuseClosed();
    await this.#io(() => this.link.write(data));
    this.#trace("out", data);
    this.stats.bytesOut += data.length;
  }

  /**
   * Read and discard whatever arrives until the line has been silent for `silenceMs`
   * (bounded by `maxMs`). Returns the number of bytes discarded.
   */
  async drain(silenceMs = 2, maxMs = 500): Promise<number> {
    const clock = this.link.clock;
    const end = clock.now() + maxMs;
    let n = 0;
    while (clock.now() < end) {
      const before = clock.now();
      const chunk = await this.#io(() => this.link.read(65536, silenceMs));
      if (chunk.length === 0) break;
      this.#trace("in", chunk);
      this.stats.bytesIn += chunk.length;
      n += chunk.length;
      if (clock.now() === before) await clock.sleep(0.1);
    }
    this.#parser.reset();
    return n;
  }

  async #write(spec: CommandSpec, values: Values, flushFirst: boolean): Promise<void> {
    this.#refuseClosed();
    if (this.personality && !spec.support.includes(this.personality)) {
      throw new FlashError(
        "UNSUPPORTED",
        `the ${this.personality} loader does not implement ${spec.name}`,
        `use a chip mode whose loader supports ${spec.name} (${spec.support.join(", ")})`,
      );
    }
    const frame = encodeRequest(spec, values);
    if (flushFirst) {
      await this.#io(() => this.link.flushInput());
      this.#parser.reset();
    }
    this.#ledger.sent(spec, values);
    await this.#io(() => this.link.write(frame));
    this.#trace("out", frame);
    this.stats.bytesOut += frame.length;
  }

  async #awaitReply<C extends CommandSpec>(
    spec: C,
    values: Values,
    timeoutMs: number,
  ): Promise<ReplyValues<C> | undefined> {
    const clock = this.link.clock;
    const deadline = clock.now() + timeoutMs;
    for (;;) {
      for (let frame = this.#parser.next(); frame; frame = this.#parser.next()) {
        if (
          frame.kind === "short" && frame.code === spec.reply?.code && frame.payload.length === 1 &&
          frame.payload[0] === STATUS_UNKNOWN_COMMAND && unknownCommandShape(spec)
        ) {
          this.stats.roundTrips++;
          throw new FlashError(
            "UNSUPPORTED",
            `the chip answered ${spec.name} with "unknown command"`,
            "this loader lacks the command: choose the chip mode that matches the chip (--chip)",
          );
        }
        const check = checkReply(spec, values, frame);
        if (check.ok) {
          this.stats.roundTrips++;
          this.#ledger.answered(frame, spec, values);
          return check.values;
        }
        if (check.reason === "status") {
          this.stats.roundTrips++;
          throw new ChipStatusError(spec.name, check.status);
        }
        // a flash change nobody asked for means a request was corrupted on the way; a write
        // completed by the 0xFF filler programmed nothing, whatever address it ended up with
        const fillerWrite = this.#fillerWrites && frame.kind === "long" &&
          (frame.code === COMMANDS.FlashWrite4K.code || frame.code === COMMANDS.FlashWrite.code);
        const unrequested = fillerWrite ? null : this.#ledger.check(frame, this.flashSize ?? undefined);
        if (unrequested) throw unrequested;
        this.skippedFrames++;
      }
      const left = deadline - clock.now();
      if (left <= 0) return undefined;
      const before = clock.now();
      const chunk = await this.#io(() => this.link.read(65536, left));
      if (chunk.length > 0) {
        this.#trace("in", chunk);
        this.stats.bytesIn += chunk.length;
        this.#parser.push(chunk);
      } else if (clock.now() === before) {
        // a link that returns at once without moving its clock would spin here forever
        await clock.sleep(left);
      }
    }
  }

  /**
   * Run an operation on the raw link (modem lines, baud, drain) so that a vanished device is
   * reported like everywhere else: as {@link FlashError} `DISCONNECTED`.
   */
  linkOp<T>(op: () => Promise<T>): Promise<T> {
    return this.#io(op);
  }

  /** Mark the client closed and close the link. Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.link.close();
  }

  #refuseClosed(): void {
    if (this.#closed) {
      throw new FlashError("PORT", `${this.link.name} is already closed`, "open the port again");
    }
  }

  async #io<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      if (e instanceof LinkClosedError) {
        throw new FlashError(
          "DISCONNECTED",
          e.message,
          "reconnect the adapter, check its cable, and run again",
          { cause: e },
        );
      }
      throw e;
    }
  }

  #trace(dir: "out" | "in", data: Uint8Array): void {
    this.#onWire?.({ dir, data, t: this.link.clock.now() });
  }
}
