/**
 * The RF calibration / MAC sector: `"TLV\0"`, a u32 length, then groups (tag ending in 0x00,
 * length = the records inside) of records (u32 tag, u32 length, data). The MAC is record
 * 0x11111102 (6 bytes, at +0x24 in the usual layout). docs/dump-formats.md §6.
 *
 * @module
 */

/** Tag of the MAC record. */
export const TLV_TAG_MAC = 0x11111102;
/** Offset of the MAC in the usual layout. */
export const TLV_MAC_OFFSET = 0x24;
/** What an erased RF sector makes the firmware report as MAC (its last three bytes zero). */
export const RF_MISSING_MAC_PREFIX = "c8:47:8c";

/** One record. */
export interface TlvRecord {
  /** u32 record tag (0x11111102: the MAC). */
  tag: number;
  /** Offset of the record's data in the sector. */
  offset: number;
  /** The record's data bytes (a view into the sector). */
  data: Uint8Array;
}

/** A parsed sector. */
export interface RfTlv {
  /** Structure is consistent (magic, lengths of groups and records). */
  valid: boolean;
  /** Why it is not, when it is not. */
  problem: string | null;
  /** Bytes of groups after the 8-byte header (u32 at +4; 0 when there is no header). */
  length: number;
  /** Records read before the end or the first inconsistency, in sector order. */
  records: TlvRecord[];
  /** The MAC, "aa:bb:cc:dd:ee:ff", when a MAC record is there. */
  mac: string | null;
}

function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

/** Format 6 bytes as a MAC. */
export function macText(b: Uint8Array): string {
  return Array.from(b.subarray(0, 6)).map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** Whether `mac` is what chips report when the RF data is missing (ends in 00:00:00). */
export function isRfMissingMac(mac: string): boolean {
  return mac.toLowerCase().endsWith(":00:00:00");
}

/** Parse the sector at `sector` (from its first byte). */
export function parseRfTlv(sector: Uint8Array): RfTlv {
  const bad = (problem: string, records: TlvRecord[] = [], length = 0): RfTlv => ({
    valid: false,
    problem,
    length,
    records,
    mac: macOf(records),
  });
  if (
    sector.length < 8 || sector[0] !== 0x54 || sector[1] !== 0x4c || sector[2] !== 0x56 || sector[3] !== 0
  ) {
    return bad(sector.every((b) => b === 0xff) ? "erased" : "no TLV header");
  }
  const length = u32(sector, 4);
  if (length === 0 || 8 + length > sector.length) {
    return bad(`length ${length} does not fit the sector`, [], length);
  }
  const records: TlvRecord[] = [];
  let o = 8;
  const end = 8 + length;
  while (o < end) {
    if (o + 8 > end) return bad(`group header at +0x${o.toString(16)} runs past the end`, records, length);
    const gtag = u32(sector, o), glen = u32(sector, o + 4);
    if ((gtag & 0xff) !== 0) {
      return bad(`+0x${o.toString(16)}: tag 0x${gtag.toString(16)} is not a group`, records, length);
    }
    const gend = o + 8 + glen;
    if (gend > end) return bad(`group 0x${gtag.toString(16)} runs past the end`, records, length);
    o += 8;
    while (o < gend) {
      const tag = u32(sector, o), len = u32(sector, o + 4);
      // real sectors fill a group's tail with 0x5A (seen in BK7231N and BK7238 sectors)
      if (tag === 0x5a5a5a5a && sector.subarray(o, gend).every((b) => b === 0x5a)) {
        o = gend;
        break;
      }
      if (o + 8 + len > gend) return bad(`record 0x${tag.toString(16)} runs past its group`, records, length);
      records.push({ tag, offset: o + 8, data: sector.slice(o + 8, o + 8 + len) });
      o += 8 + len;
    }
  }
  return { valid: true, problem: null, length, records, mac: macOf(records) };
}

function macOf(records: TlvRecord[]): string | null {
  const r = records.find((x) => x.tag === TLV_TAG_MAC && x.data.length === 6);
  return r ? macText(r.data) : null;
}

/** Build a sector (`size` bytes, 0xFF after the TLV) from groups of records. */
export function buildRfTlv(
  groups: readonly { tag: number; records: readonly { tag: number; data: Uint8Array }[] }[],
  size = 0x1000,
): Uint8Array {
  const out = new Uint8Array(size).fill(0xff);
  const dv = new DataView(out.buffer);
  out.set([0x54, 0x4c, 0x56, 0]);
  let o = 8;
  for (const g of groups) {
    const glen = g.records.reduce((n, r) => n + 8 + r.data.length, 0);
    dv.setUint32(o, g.tag, true);
    dv.setUint32(o + 4, glen, true);
    o += 8;
    for (const r of g.records) {
      dv.setUint32(o, r.tag, true);
      dv.setUint32(o + 4, r.data.length, true);
      out.set(r.data, o + 8);
      o += 8 + r.data.length;
    }
  }
  dv.setUint32(4, o - 8, true);
  return out;
}

function le32(v: number): Uint8Array {
  return new Uint8Array([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24]);
}

/**
 * A fresh RF sector for the BK7231N/M family: the records BK7231GUIFlashTool's template for
 * these chips carries (docs/dump-formats.md §6), with `mac` as the MAC.
 */
export function templateRfTlvN(mac: Uint8Array): Uint8Array {
  return buildRfTlv([{
    tag: 0x11111100,
    records: [
      { tag: 0x11111101, data: le32(0x00bc614e) },
      { tag: TLV_TAG_MAC, data: mac.slice(0, 6) },
      { tag: 0x11111103, data: le32(0x0000015e) },
      { tag: 0x11111104, data: le32(0x0153158e) },
      { tag: 0x11111105, data: le32(0x0000000c) },
      { tag: 0x11111106, data: le32(0x03540055) },
      { tag: 0x11111107, data: new Uint8Array([...le32(0x80), ...le32(0x80)]) },
    ],
  }]);
}

/** A MAC with the template's vendor prefix, the locally administered bit set, and a random tail. */
export function randomTemplateMac(random: (n: number) => Uint8Array): Uint8Array {
  const tail = random(3);
  return new Uint8Array([0x38 | 0x02, 0x1f, 0x8d, tail[0], tail[1], tail[2]]);
}
