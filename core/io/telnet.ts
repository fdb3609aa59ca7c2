/**
 * Telnet framing (RFC 854, RFC 855, RFC 856 binary) and the COM-PORT-OPTION of RFC 2217, the
 * protocol serial bridges such as ser2net speak on `rfc2217://` ports: the one place for their
 * constants, a streaming decoder and the encoders. Pure: no I/O, no time. Facts and sources:
 * docs/rfc2217.md.
 *
 * @module
 */

/** Telnet command bytes (RFC 854). */
export const TELNET = {
  /** Interpret As Command: starts every command; doubled it is a data byte 0xFF. */
  IAC: 255,
  DONT: 254,
  DO: 253,
  WONT: 252,
  WILL: 251,
  /** Start of subnegotiation. */
  SB: 250,
  GA: 249,
  NOP: 241,
  /** End of subnegotiation. */
  SE: 240,
} as const;

/** Telnet options this code negotiates. */
export const OPTION = {
  /** RFC 856: 8-bit data without the NVT's CR rules. */
  BINARY: 0,
  /** RFC 857: the server echoing what it hears (refused: it would corrupt a binary stream). */
  ECHO: 1,
  /** RFC 858: suppress go-ahead. */
  SGA: 3,
  /** RFC 2217: serial port control. */
  COM_PORT: 44,
} as const;

/** RFC 2217 subnegotiation commands, client to server; the server answers with the same + 100. */
export const COM_PORT = {
  SIGNATURE: 0,
  SET_BAUDRATE: 1,
  SET_DATASIZE: 2,
  SET_PARITY: 3,
  SET_STOPSIZE: 4,
  SET_CONTROL: 5,
  NOTIFY_LINESTATE: 6,
  NOTIFY_MODEMSTATE: 7,
  FLOWCONTROL_SUSPEND: 8,
  FLOWCONTROL_RESUME: 9,
  SET_LINESTATE_MASK: 10,
  SET_MODEMSTATE_MASK: 11,
  PURGE_DATA: 12,
} as const;

/** What the server adds to a command code in its answers and notifications. */
export const SERVER_REPLY = 100;

/** SET-PARITY values (0 asks for the current one). */
export const PARITY = { NONE: 1, ODD: 2, EVEN: 3, MARK: 4, SPACE: 5 } as const;

/** SET-STOPSIZE values (0 asks for the current one). */
export const STOPSIZE = { ONE: 1, TWO: 2, ONE_AND_HALF: 3 } as const;

/** SET-CONTROL values this code uses (the rest select flow-control modes). */
export const CONTROL = {
  FLOW_REQUEST: 0,
  FLOW_NONE: 1,
  BREAK_REQUEST: 4,
  BREAK_ON: 5,
  BREAK_OFF: 6,
  DTR_REQUEST: 7,
  DTR_ON: 8,
  DTR_OFF: 9,
  RTS_REQUEST: 10,
  RTS_ON: 11,
  RTS_OFF: 12,
  INBOUND_FLOW_REQUEST: 13,
  INBOUND_FLOW_NONE: 14,
} as const;

/** PURGE-DATA values: the access server's receive buffer (device to client), transmit, both. */
export const PURGE = { RECEIVE: 1, TRANSMIT: 2, BOTH: 3 } as const;

/** NOTIFY-MODEMSTATE bits. */
export const MODEM = {
  CD: 0x80,
  RI: 0x40,
  DSR: 0x20,
  CTS: 0x10,
  DELTA_CD: 0x08,
  TRAILING_RI: 0x04,
  DELTA_DSR: 0x02,
  DELTA_CTS: 0x01,
} as const;

/** A negotiation verb. */
export type Verb = typeof TELNET.WILL | typeof TELNET.WONT | typeof TELNET.DO | typeof TELNET.DONT;

/** What the decoder found in the stream. */
export type TelnetEvent =
  | { type: "data"; data: Uint8Array }
  | { type: "negotiate"; verb: Verb; option: number }
  | { type: "sub"; option: number; payload: Uint8Array }
  | { type: "command"; code: number };

const enum St {
  Data,
  Iac,
  Verb,
  Sub,
  SubIac,
  Cr,
}

/** Longest subnegotiation kept; a longer one is cut (RFC 2217's are a few bytes). */
const MAX_SUB = 512;

/**
 * Splits a received telnet stream into data and commands. Chunks may end anywhere, even inside
 * a command. `binary()` says whether the peer sends in BINARY mode; outside it a CR NUL pair
 * stands for a lone CR (RFC 854).
 *
 * @example
 * ```ts
 * const d = new TelnetDecoder(() => true);
 * d.push(Uint8Array.of(0x41, 255, 255, 255, 251, 44)); // data 41 ff, then WILL COM-PORT
 * ```
 */
export class TelnetDecoder {
  #st = St.Data;
  #verb = 0;
  #sub: number[] = [];
  #binary: () => boolean;

  constructor(binary: () => boolean) {
    this.#binary = binary;
  }

  /** Decode one received chunk. */
  push(bytes: Uint8Array): TelnetEvent[] {
    const out: TelnetEvent[] = [];
    let data: number[] = [];
    const flush = () => {
      if (data.length) out.push({ type: "data", data: Uint8Array.from(data) });
      data = [];
    };
    for (const b of bytes) {
      switch (this.#st) {
        case St.Cr:
          this.#st = St.Data;
          if (b === 0) break; // CR NUL is a lone CR, already delivered
          if (b === TELNET.IAC) {
            this.#st = St.Iac;
            break;
          }
          data.push(b);
          break;
        case St.Data:
          if (b === TELNET.IAC) this.#st = St.Iac;
          else {
            data.push(b);
            if (b === 13 && !this.#binary()) this.#st = St.Cr;
          }
          break;
        case St.Iac:
          if (b === TELNET.IAC) {
            data.push(b);
            this.#st = St.Data;
          } else if (b >= TELNET.WILL) {
            this.#verb = b;
            this.#st = St.Verb;
          } else if (b === TELNET.SB) {
            this.#sub = [];
            this.#st = St.Sub;
          } else {
            flush();
            out.push({ type: "command", code: b });
            this.#st = St.Data;
          }
          break;
        case St.Verb:
          flush();
          out.push({ type: "negotiate", verb: this.#verb as Verb, option: b });
          this.#st = St.Data;
          break;
        case St.Sub:
          if (b === TELNET.IAC) this.#st = St.SubIac;
          else if (this.#sub.length < MAX_SUB) this.#sub.push(b);
          break;
        case St.SubIac:
          if (b === TELNET.IAC) {
            if (this.#sub.length < MAX_SUB) this.#sub.push(b);
            this.#st = St.Sub;
          } else {
            // IAC SE ends it; any other command inside a subnegotiation also ends it (RFC 855)
            flush();
            if (this.#sub.length > 0) {
              out.push({ type: "sub", option: this.#sub[0], payload: Uint8Array.from(this.#sub.slice(1)) });
            }
            this.#sub = [];
            this.#st = St.Data;
          }
          break;
      }
    }
    flush();
    return out;
  }
}

/**
 * Data as it goes on a telnet connection: every 0xFF doubled, and outside BINARY mode every
 * CR followed by NUL (RFC 854).
 */
export function escapeData(data: Uint8Array, binary = true): Uint8Array {
  let extra = 0;
  for (const b of data) if (b === TELNET.IAC || (b === 13 && !binary)) extra++;
  if (extra === 0) return data;
  const out = new Uint8Array(data.length + extra);
  let at = 0;
  for (const b of data) {
    out[at++] = b;
    if (b === TELNET.IAC) out[at++] = TELNET.IAC;
    else if (b === 13 && !binary) out[at++] = 0;
  }
  return out;
}

/** `IAC <verb> <option>`. */
export function negotiation(verb: Verb, option: number): Uint8Array {
  return Uint8Array.of(TELNET.IAC, verb, option);
}

/** `IAC SB <option> <payload, 0xFF doubled> IAC SE`. */
export function subnegotiation(option: number, payload: Uint8Array): Uint8Array {
  const body = escapeData(payload);
  const out = new Uint8Array(body.length + 5);
  out.set([TELNET.IAC, TELNET.SB, option]);
  out.set(body, 3);
  out.set([TELNET.IAC, TELNET.SE], body.length + 3);
  return out;
}

/** One COM-PORT-OPTION command with its value bytes. */
export function comPortCommand(command: number, value: Uint8Array | number[]): Uint8Array {
  return subnegotiation(OPTION.COM_PORT, Uint8Array.of(command, ...value));
}

/** A baud rate as SET-BAUDRATE carries it: four bytes, network order (0 asks for the current rate). */
export function baudBytes(baud: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, baud >>> 0);
  return out;
}

/** The baud rate in a SET-BAUDRATE value, or null when it is not four bytes. */
export function readBaud(value: Uint8Array): number | null {
  if (value.length !== 4) return null;
  return new DataView(value.buffer, value.byteOffset, 4).getUint32(0);
}

/** Our side (`us`) or the peer's (`them`) of an option. */
type Side = "no" | "yes" | "wantyes";

/**
 * Which options a side takes up, and the answers RFC 854 asks for: a request for a state
 * already in force is not answered (that is what keeps two ends from looping), a request for
 * an option not supported is refused. After RFC 1143, without its queue bits.
 */
export class OptionTable {
  #us = new Map<number, Side>();
  #them = new Map<number, Side>();
  #refusedUs = new Set<number>();
  #refusedThem = new Set<number>();
  #acceptUs: ReadonlySet<number>;
  #acceptThem: ReadonlySet<number>;

  /** `acceptUs`: options we perform on request; `acceptThem`: options we let the peer perform. */
  constructor(acceptUs: Iterable<number>, acceptThem: Iterable<number>) {
    this.#acceptUs = new Set(acceptUs);
    this.#acceptThem = new Set(acceptThem);
  }

  /** Whether we perform `option`. */
  us(option: number): boolean {
    return this.#us.get(option) === "yes";
  }

  /** Whether the peer performs `option`. */
  them(option: number): boolean {
    return this.#them.get(option) === "yes";
  }

  /** Whether the peer refused a request of ours about `option` (DONT to our WILL, WONT to our DO). */
  refused(option: number, side: "us" | "them"): boolean {
    return (side === "us" ? this.#refusedUs : this.#refusedThem).has(option);
  }

  /** Ask to perform `option` (WILL) or for the peer to (DO). Returns the bytes to send, if any. */
  request(option: number, side: "us" | "them"): Uint8Array | null {
    const table = side === "us" ? this.#us : this.#them;
    if ((table.get(option) ?? "no") !== "no") return null;
    table.set(option, "wantyes");
    return negotiation(side === "us" ? TELNET.WILL : TELNET.DO, option);
  }

  /** React to a received negotiation; returns the answer to send, if any. */
  receive(verb: Verb, option: number): Uint8Array | null {
    switch (verb) {
      case TELNET.DO: {
        const st = this.#us.get(option) ?? "no";
        if (!this.#acceptUs.has(option)) return negotiation(TELNET.WONT, option);
        this.#us.set(option, "yes");
        return st === "no" ? negotiation(TELNET.WILL, option) : null;
      }
      case TELNET.DONT: {
        const st = this.#us.get(option) ?? "no";
        this.#us.set(option, "no");
        if (st === "wantyes") this.#refusedUs.add(option);
        return st === "yes" ? negotiation(TELNET.WONT, option) : null;
      }
      case TELNET.WILL: {
        const st = this.#them.get(option) ?? "no";
        if (!this.#acceptThem.has(option)) return negotiation(TELNET.DONT, option);
        this.#them.set(option, "yes");
        return st === "no" ? negotiation(TELNET.DO, option) : null;
      }
      case TELNET.WONT: {
        const st = this.#them.get(option) ?? "no";
        this.#them.set(option, "no");
        if (st === "wantyes") this.#refusedThem.add(option);
        return st === "yes" ? negotiation(TELNET.DONT, option) : null;
      }
    }
  }
}
