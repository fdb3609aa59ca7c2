/**
 * A {@link ByteLink} over the browser's Web Serial API (`navigator.serial`): a USB-UART adapter
 * chosen by the user in the page. The port is described by the narrow {@link SerialPortLike}
 * shape, so the link is tested against a fake and never needs a browser type library.
 *
 * Web Serial cannot change the rate of an open port: {@link WebSerialLink.setBaud} closes and
 * reopens it at the new rate (the modem lines are set again afterwards, since opening may
 * change them).
 *
 * @example
 * ```ts
 * import { WebSerialLink, type SerialPortLike } from "./web_serial.ts";
 *
 * async function connect(port: SerialPortLike) {
 *   const link = await WebSerialLink.open(port, { baud: 115200 });
 *   await link.write(Uint8Array.of(0x01, 0xe0, 0xfc, 0x01, 0x00));
 *   return await link.read(64, 100);
 * }
 * ```
 *
 * @module
 */

import { type Clock, realClock } from "../clock.ts";
import { FlashError } from "../errors.ts";
import { type ByteLink, LinkClosedError, type ModemSignals } from "./link.ts";

/** Options of `SerialPort.open()` this link uses. */
export interface SerialOpenOptions {
  baudRate: number;
  dataBits?: number;
  stopBits?: number;
  parity?: "none" | "even" | "odd";
  bufferSize?: number;
  flowControl?: "none" | "hardware";
}

/** The part of the Web Serial `SerialPort` the link needs. */
export interface SerialPortLike {
  open(options: SerialOpenOptions): Promise<void>;
  close(): Promise<void>;
  readonly readable: ReadableStream<Uint8Array> | null;
  readonly writable: WritableStream<Uint8Array> | null;
  setSignals(signals: { dataTerminalReady?: boolean; requestToSend?: boolean }): Promise<void>;
  getInfo?(): { usbVendorId?: number; usbProductId?: number };
}

/** Options of {@link WebSerialLink.open}. */
export interface WebSerialOptions {
  /** Rate to open the port at (default 115200). */
  baud?: number;
  /** Name in messages (default "web-serial", with the adapter's USB IDs when the browser gives them). */
  name?: string;
  /** Receive buffer the browser keeps (default 64 KiB: a Read4K reply is 4 KiB plus framing). */
  bufferSize?: number;
}

/** A Web Serial port as a {@link ByteLink}. */
export class WebSerialLink implements ByteLink {
  readonly name: string;
  readonly clock: Clock = realClock;
  readonly hasModemLines = true;
  #port: SerialPortLike;
  #baud: number;
  #bufferSize: number;
  #signals: ModemSignals = {};
  #chunks: Uint8Array[] = [];
  #queued = 0;
  #wake: (() => void) | null = null;
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  #pump: Promise<void> = Promise.resolve();
  #gone: string | null = null;
  #closed = false;

  private constructor(port: SerialPortLike, baud: number, opts: WebSerialOptions) {
    this.#port = port;
    this.#baud = baud;
    this.#bufferSize = opts.bufferSize ?? 65536;
    this.name = opts.name ?? describe(port);
  }

  /**
   * Open `port` at `opts.baud` (8N1, no flow control).
   *
   * @throws {FlashError} code "PORT" when the browser cannot open it (in use, unplugged).
   */
  static async open(port: SerialPortLike, opts: WebSerialOptions = {}): Promise<WebSerialLink> {
    const link = new WebSerialLink(port, opts.baud ?? 115200, opts);
    await link.#openAt(link.#baud);
    return link;
  }

  get baud(): number {
    return this.#baud;
  }

  async #openAt(baud: number): Promise<void> {
    try {
      await this.#port.open({
        baudRate: baud,
        dataBits: 8,
        stopBits: 1,
        parity: "none",
        flowControl: "none",
        bufferSize: this.#bufferSize,
      });
    } catch (e) {
      throw new FlashError(
        "PORT",
        `cannot open ${this.name} at ${baud} baud: ${e instanceof Error ? e.message : e}`,
        "close other programs or tabs using the adapter, re-plug it, and connect again",
        { cause: e },
      );
    }
    const { readable, writable } = this.#port;
    if (!readable || !writable) {
      throw new FlashError(
        "PORT",
        `${this.name} opened without streams`,
        "re-plug the adapter and connect again",
      );
    }
    this.#reader = readable.getReader();
    this.#writer = writable.getWriter();
    this.#pump = this.#readLoop(this.#reader);
  }

  async #readLoop(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (value && value.length > 0) {
          this.#chunks.push(value);
          this.#queued += value.length;
          this.#notify();
        }
      }
    } catch (e) {
      // a read error on Web Serial means the device went away (or a fatal framing error)
      if (!this.#closed && this.#reader === reader) this.#gone = e instanceof Error ? e.message : String(e);
    } finally {
      reader.releaseLock();
    }
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  #check(): void {
    if (this.#closed) throw new LinkClosedError(this.name, "closed");
    if (this.#gone !== null) throw new LinkClosedError(this.name, this.#gone);
  }

  async write(data: Uint8Array): Promise<void> {
    this.#check();
    try {
      await this.#writer!.write(data);
    } catch (e) {
      this.#gone ??= e instanceof Error ? e.message : String(e);
      throw new LinkClosedError(this.name, this.#gone);
    }
  }

  async read(max: number, timeoutMs: number): Promise<Uint8Array> {
    if (this.#queued === 0) {
      this.#check();
      if (timeoutMs <= 0) return new Uint8Array(0);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
      this.#wake = null;
      if (this.#queued === 0) {
        this.#check();
        return new Uint8Array(0);
      }
    }
    return this.#take(Math.max(1, max));
  }

  #take(max: number): Uint8Array {
    const n = Math.min(max, this.#queued);
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const head = this.#chunks[0];
      const part = Math.min(head.length, n - at);
      out.set(head.subarray(0, part), at);
      at += part;
      if (part === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(part);
    }
    this.#queued -= n;
    return out;
  }

  async drain(): Promise<void> {
    this.#check();
    await this.#writer!.ready;
  }

  flushInput(): Promise<void> {
    this.#chunks = [];
    this.#queued = 0;
    return Promise.resolve();
  }

  async setBaud(baud: number): Promise<void> {
    this.#check();
    if (baud === this.#baud) return;
    await this.#release();
    await this.#port.close();
    this.#baud = baud;
    await this.#openAt(baud);
    if (this.#signals.dtr !== undefined || this.#signals.rts !== undefined) await this.#applySignals();
  }

  async setSignals(signals: ModemSignals): Promise<void> {
    this.#check();
    this.#signals = { ...this.#signals, ...signals };
    await this.#applySignals();
  }

  async #applySignals(): Promise<void> {
    const s: { dataTerminalReady?: boolean; requestToSend?: boolean } = {};
    if (this.#signals.dtr !== undefined) s.dataTerminalReady = this.#signals.dtr;
    if (this.#signals.rts !== undefined) s.requestToSend = this.#signals.rts;
    await this.#port.setSignals(s);
  }

  /** Stop the read loop and give the streams back to the port. */
  async #release(): Promise<void> {
    const reader = this.#reader;
    const writer = this.#writer;
    this.#reader = null;
    this.#writer = null;
    if (reader) await reader.cancel().catch(() => {/* already errored: the loop recorded why */});
    await this.#pump;
    if (writer) {
      await writer.close().catch(() => {/* a failed close leaves the lock to release below */});
      writer.releaseLock();
    }
    await this.flushInput();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#release();
    await this.#port.close().catch((e) => {
      // an unplugged adapter cannot be closed cleanly; nothing is left to release then
      if (this.#gone === null) throw e;
    });
  }
}

function describe(port: SerialPortLike): string {
  const info = port.getInfo?.() ?? {};
  const h = (n: number) => n.toString(16).padStart(4, "0");
  return info.usbVendorId === undefined
    ? "web-serial"
    : `web-serial:${h(info.usbVendorId)}:${h(info.usbProductId ?? 0)}`;
}
