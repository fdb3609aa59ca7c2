/**
 * JEDEC IDs of the SPI NOR parts found on Beken modules, with each part's status-register
 * layout. Facts merge the Beken GUI flash list (docs/uart.md §5.5: size, number of status
 * registers, SR read opcodes, protect mask) with docs/spi-ch341.md parts C and D (SR bit maps,
 * SR2 write style, QE position). IDs are in wire order: manufacturer, memory type, capacity.
 *
 * @example
 * ```ts
 * const part = lookupFlash([0xeb, 0x60, 0x15]);
 * part?.name; // "TH25Q16HB"
 * part?.size; // 2097152
 * ```
 *
 * @module
 */

/** Bit positions of one part's status-register fields, in the word `SR1 | SR2 << 8 | SR3 << 16`. */
export interface SrLayout {
  /** Bit index of BP0. */
  bpShift: number;
  /** Number of block-protect bits (0 when the part has no block protection). */
  bpBits: number;
  /** Top/bottom bit, or null when the part always protects from the top. */
  tbBit: number | null;
  /** Sector/block granularity bit, or null. */
  secBit: number | null;
  /** Complement-protect bit, or null. */
  cmpBit: number | null;
  /** SRP0 / SRWD, or null. */
  srp0Bit: number | null;
  /** SRP1 / SRL, or null. */
  srp1Bit: number | null;
  /** Quad-enable bit, or null when unknown or absent. */
  qeBit: number | null;
  /** Bits a write can never change (WIP, WEL, SUS, reserved). */
  readOnlyMask: number;
  /** One-time bits: once set they stay set (security-register lock bits LB1–LB3). */
  stickyMask: number;
}

/** One flash part. */
export interface FlashPart {
  /** JEDEC ID, wire order (manufacturer, type, capacity). */
  id: readonly [number, number, number];
  /** Part name as the Beken tables spell it. */
  name: string;
  /** Vendor name. */
  vendor: string;
  /** Size in bytes. */
  size: number;
  /** Number of status registers read as one word (0–3; "szSR" in the Beken list). */
  srCount: 0 | 1 | 2 | 3;
  /** Opcode reading SR1, SR2, SR3 in order (SR2 is the configuration register 0x15 on Macronix). */
  srRead: readonly number[];
  /** Write opcodes the part accepts: always 0x01, plus 0x31 (SR2) and 0x11 (SR3) where known. */
  srWriteOpcodes: readonly number[];
  /**
   * How a host should write SR2: "combined" = one `01 SR1 SR2`, "separate" = `01 SR1` then
   * `31 SR2` (Beken lists' second write opcode), "none" = the part has one register.
   */
  sr2Write: "combined" | "separate" | "none";
  /** Bits the Beken unprotect clears (GUI `cwMsk`), in the SR word. */
  protectMask: number;
  /** Field positions. */
  layout: SrLayout;
  /** Whether a one-byte `01 SR1` clears SR2 (older generations do; unknown per part, default false). */
  oneByteWrsrClearsSr2: boolean;
  /** False for the fallback built from an unknown ID by {@link genericFlashPart}. */
  known: boolean;
}

const KiB = 1024;

/** Three BP bits, TB, SEC, SRP0 in SR1; SRP1, QE, LB1–3, CMP, SUS in SR2 (Winbond style). */
function winbondLayout(srCount: number, hasCmp: boolean): SrLayout {
  const two = srCount >= 2;
  return {
    bpShift: 2,
    bpBits: 3,
    tbBit: 5,
    secBit: 6,
    cmpBit: two && hasCmp ? 14 : null,
    srp0Bit: 7,
    srp1Bit: two ? 8 : null,
    qeBit: two ? 9 : null,
    readOnlyMask: 0x03 | (two ? 0x8400 : 0) | (srCount >= 3 ? 0x1b0000 : 0),
    stickyMask: two ? 0x3800 : 0,
  };
}

/** BP0–BP3 at bits 2–5 and SRWD at bit 7 (Eon/ESMT EN25QH, Macronix MX25V). */
function fourBpLayout(qeBit: number | null): SrLayout {
  return {
    bpShift: 2,
    bpBits: 4,
    tbBit: null,
    secBit: null,
    cmpBit: null,
    srp0Bit: 7,
    srp1Bit: null,
    qeBit,
    readOnlyMask: 0x03,
    stickyMask: 0,
  };
}

/** BP0–BP2 only (small GigaDevice/Boya parts with mask 0x1C). */
function threeBpLayout(): SrLayout {
  return { ...fourBpLayout(null), bpBits: 3 };
}

function noSrLayout(): SrLayout {
  return { ...fourBpLayout(null), bpBits: 0, srp0Bit: null };
}

interface RowOptions {
  /** QE bit override for single-register parts. */
  qe?: number;
  /** SR2 has its own write opcode 0x31 (Beken lists' `cwdWr[1] = 0x31`). */
  separate?: boolean;
  /** The part also accepts 0x31/0x11 (Winbond W25Q). */
  winbond?: boolean;
  /** Size in bytes when it is not `1 << capacity`. */
  size?: number;
  /** SR read opcodes when not the 05/35/15 default. */
  read?: number[];
}

function part(
  wire: string,
  name: string,
  vendor: string,
  srCount: 0 | 1 | 2 | 3,
  protectMask: number,
  opts: RowOptions = {},
): FlashPart {
  const id = wire.split(" ").map((h) => parseInt(h, 16)) as [number, number, number];
  let layout: SrLayout;
  if (srCount === 0) layout = noSrLayout();
  else if ((protectMask & 0x7c) === 0x7c) layout = winbondLayout(srCount, (protectMask & 0x4000) !== 0);
  else if ((protectMask & 0x3c) === 0x3c) layout = fourBpLayout(opts.qe ?? null);
  else layout = threeBpLayout();
  const srWriteOpcodes = srCount === 0
    ? []
    : opts.winbond
    ? [0x01, 0x31, 0x11]
    : opts.separate
    ? [0x01, 0x31]
    : [0x01];
  return {
    id,
    name,
    vendor,
    size: opts.size ?? 2 ** id[2],
    srCount,
    srRead: opts.read ?? [0x05, 0x35, 0x15].slice(0, srCount),
    srWriteOpcodes,
    sr2Write: srCount < 2 ? "none" : opts.separate ? "separate" : "combined",
    protectMask,
    layout,
    oneByteWrsrClearsSr2: false,
    known: true,
  };
}

const W = 0x407c;
const MX = { read: [0x05, 0x15], qe: 6 };

/**
 * Every known part. Rows of the Beken GUI list (docs/uart.md §5.5) first, then parts only
 * docs/spi-ch341.md part D names. Where the GUI list and bk7231tools disagree on the number of
 * status registers (1C 41 16, C8 40 16) the GUI list is followed.
 */
export const FLASH_PARTS: readonly FlashPart[] = [
  part("C4 40 10", "GT25Q05D", "Giantec", 2, W),
  part("C4 40 11", "GT25Q10D", "Giantec", 2, W),
  part("C4 40 12", "GT25Q20D", "Giantec", 2, W),
  part("85 44 12", "PY25D22U", "Puya", 1, 0x007c),
  part("85 45 12", "PY25D24U", "Puya", 1, 0x007c),
  part("B3 60 12", "UC25HQ20", "UCUN", 2, W),
  part("EB 60 12", "TH25D20HA", "Tsingteng", 2, W),
  part("E0 40 13", "PN25Q40A", "Boya", 1, 0x401c),
  part("51 40 13", "GD25D40", "GigaDevice", 1, 0x001c),
  part("C8 64 13", "GD25Q41BT", "GigaDevice", 1, 0x401c),
  part("C8 40 13", "GD25Q41B", "GigaDevice", 1, 0x401c),
  part("85 60 13", "P25Q40", "Puya", 2, W),
  part("CD 60 13", "TH25D40HB", "Tsingteng", 2, W),
  part("1C 31 13", "PN25F04B", "XTX", 1, 0x003c),
  part("C2 23 13", "MX25V4035F", "Macronix", 2, W),
  part("C4 40 13", "GT25Q40D", "Giantec", 2, W),
  part("B3 60 13", "UC25HQ40", "UCUN", 2, W),
  part("C8 65 13", "GD25Q41B", "GigaDevice", 2, W),
  part("CD 71 13", "TH25D40UC", "Tsingteng", 2, W),
  part("01 4B 42", "BK", "Beken", 0, 0, { size: 512 * KiB }),
  part("E0 40 14", "PN25Q80A", "Boya", 1, 0x401c),
  part("C8 64 14", "GD25WD80E", "GigaDevice", 1, W),
  part("51 40 14", "GD25D80", "GigaDevice", 1, 0x001c),
  part("C8 40 14", "GD25D80", "GigaDevice", 2, W),
  part("85 60 14", "P25Q80", "Puya", 2, W),
  part("CD 60 14", "TH25Q80HB", "Tsingteng", 2, W),
  part("C2 23 14", "MX25V8035F", "Macronix", 2, 0x103c, MX),
  part("5E 40 14", "PN25F08B", "XTX", 1, 0x003c),
  part("C2 20 14", "MX25V80066", "Macronix", 1, 0x007c),
  part("0B 40 14", "XT25F08F", "XTX", 2, W, { separate: true }),
  part("C8 65 14", "GD25WQ80E", "GigaDevice", 2, W),
  part("1C 70 15", "EN25QH16B", "ESMT", 1, 0x003c, { qe: 6 }),
  part("C8 40 15", "GD25Q16B", "GigaDevice", 2, W),
  part("C8 65 15", "GD25WQ16E", "GigaDevice", 2, W),
  part("C4 60 15", "GT25Q16B", "Giantec", 3, W, { separate: true }),
  part("85 42 15", "P25Q16HB", "Puya", 1, W),
  part("85 20 15", "P25Q16HBK", "Puya", 2, W, { separate: true }),
  part("85 60 15", "P25Q16SU", "Puya", 2, W, { separate: true }),
  part("EB 60 15", "TH25Q16HB", "Tsingteng", 2, W),
  part("C2 23 15", "MX25V1635F", "Macronix", 2, 0x103c, MX),
  part("0B 40 15", "XT25F16B", "XTX", 2, W),
  part("4B 40 15", "XT25F16B_1", "XTX", 2, W),
  part("CD 71 15", "TH25Q16UC", "Tsingteng", 2, W),
  part("1C 41 16", "EN25QE32A", "ESMT", 2, W),
  part("1C 61 16", "EN25QW32A", "ESMT", 2, W),
  part("C8 65 16", "GD25WQ32E", "GigaDevice", 2, W),
  part("C8 40 16", "GD25Q32E", "GigaDevice", 2, W, { separate: true }),
  part("85 60 16", "P25Q32H", "Puya", 2, W),
  part("85 20 16", "P25Q32HB", "Puya", 2, W),
  part("0B 40 16", "XT25F32B", "XTX", 2, W),
  part("20 40 16", "XM25QH32D", "XMC", 2, W, { separate: true }),
  part("CD 60 16", "TH25Q32UB", "Tsingteng", 2, W),
  part("85 65 16", "PY25Q32LB", "Puya", 2, W),
  part("C8 65 17", "GD25WQ64E", "GigaDevice", 2, W),
  part("85 60 17", "P25Q64H", "Puya", 2, W),
  part("0B 60 17", "XT25Q64B", "XTX", 2, W),
  part("0B 40 17", "XT25F64B", "XTX", 2, W),
  part("85 20 17", "PY25Q64HA", "Puya", 2, W),
  part("20 40 17", "XM25QH64D", "XMC", 2, W),
  part("C8 40 17", "GD25Q64C", "GigaDevice", 2, W, { separate: true }),
  part("CD 60 17", "TH25Q64HB", "Tsingteng", 2, W),
  part("EB 60 17", "TH25Q64HA", "Tsingteng", 2, W),
  part("C8 60 18", "GD25LQ128E", "GigaDevice", 2, W),
  part("C8 65 18", "GD25WQ128E", "GigaDevice", 2, W),
  part("85 20 18", "P25Q128HA", "Puya", 2, W),
  part("EF 40 18", "W25Q128JV", "Winbond", 2, W, { winbond: true }),
  part("20 41 18", "XM25QU128C", "XMC", 2, W),
  part("0B 40 18", "XT25F128F", "XTX", 3, W),
  part("0B 60 18", "XT25Q128B", "XTX", 3, W),
  part("5E 50 18", "ZB25LQ128C", "Zbit", 2, W),
  part("20 40 18", "XM25QH128D", "XMC", 2, W),
  part("68 40 18", "BY25Q128ES", "Boya", 2, 0x7c7c),
  part("C4 40 18", "GT25Q128EZ", "Giantec", 2, W),
  part("C8 40 18", "GD25Q128C", "GigaDevice", 2, W),
  part("68 60 18", "BY25Q128EL", "Boya", 2, W),
  part("A1 60 18", "FM25LQ128I", "Fudan", 2, W),
  part("EF 60 18", "W25Q128JW_IQ", "Winbond", 2, W, { winbond: true }),
  part("85 65 18", "PY25Q128LA", "Puya", 2, W),
  part("EF 80 18", "W25Q128JW_IM", "Winbond", 2, W, { winbond: true }),
  part("C8 68 19", "GD25LX256E", "GigaDevice", 1, W),
  part("20 40 19", "XM25QH256D", "XMC", 2, W),
  part("C8 40 19", "GD25Q256C", "GigaDevice", 2, W),
  part("C8 60 19", "GD25LQ256E", "GigaDevice", 2, W),
  part("C8 47 1A", "GD25Q512C", "GigaDevice", 2, W),
  // docs/spi-ch341.md part D, absent from the GUI list.
  part("1C 70 16", "EN25QH32B", "ESMT", 1, 0x003c, { qe: 6 }),
  part("0E 40 16", "FT25H32", "XTX", 2, W),
  part("EF 40 15", "W25Q16", "Winbond", 2, W, { winbond: true }),
  part("EF 40 16", "W25Q32", "Winbond", 2, W, { winbond: true }),
  part("68 40 15", "BY25D16A", "Boya", 2, W),
  part("68 40 16", "BH25Q32", "Bohong", 2, W),
];

const BY_KEY = new Map(FLASH_PARTS.map((p) => [key(p.id), p]));

function key(id: ArrayLike<number>): number {
  return ((id[0] & 0xff) << 16) | ((id[1] & 0xff) << 8) | (id[2] & 0xff);
}

/**
 * The part with this JEDEC ID (first three bytes, wire order), or undefined.
 *
 * @example
 * ```ts
 * lookupFlash(new Uint8Array([0x1c, 0x70, 0x15]))?.name; // "EN25QH16B"
 * ```
 */
export function lookupFlash(id: Uint8Array | readonly number[]): FlashPart | undefined {
  if (id.length < 3) return undefined;
  return BY_KEY.get(key(id));
}

/**
 * Size in bytes: the table's value for known parts, else `1 << capacity byte` (the GUI's rule),
 * or 0 when the capacity byte is implausible (below 64 KiB or above 64 MiB).
 *
 * @example
 * ```ts
 * sizeFromId([0xef, 0x40, 0x16]); // 4194304
 * ```
 */
export function sizeFromId(id: Uint8Array | readonly number[]): number {
  const known = lookupFlash(id);
  if (known) return known.size;
  const cap = id[2] ?? 0;
  return cap >= 0x10 && cap <= 0x1a ? 2 ** cap : 0;
}

/**
 * A stand-in for an unknown ID: Winbond-style two registers read with 05/35, written with a
 * two-byte `01`, size from the capacity byte (2 MiB when implausible).
 */
export function genericFlashPart(id: Uint8Array | readonly number[]): FlashPart {
  const wire = [id[0] ?? 0, id[1] ?? 0, id[2] ?? 0].map((b) => b.toString(16).padStart(2, "0")).join(" ");
  const p = part(wire, `unknown ${wire.toUpperCase()}`, "unknown", 2, W, { size: sizeFromId(id) || 2 ** 21 });
  return { ...p, known: false };
}

/** The part for an ID, known or generic. */
export function flashPartFor(id: Uint8Array | readonly number[]): FlashPart {
  return lookupFlash(id) ?? genericFlashPart(id);
}

/** `EB 60 15` style rendering of an ID. */
export function formatJedecId(id: ArrayLike<number>): string {
  return Array.from(id, (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(" ");
}
