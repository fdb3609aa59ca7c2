/**
 * Tuya's key/value storage ("KV storage", the "Tuya config"): AES-128-ECB encrypted 4 KiB
 * blocks, a key block holding the per-device inner key, then data blocks of 128-byte pages,
 * some of them index pages naming a value and the pages it spans. Formats and constants with
 * their sources: docs/dump-formats.md §5. Decoding and encoding are written here from those
 * facts.
 *
 * @module
 */

import { createCipheriv, createDecipheriv } from "node:crypto";

/** Key of the block layer (ASCII). */
export const TUYA_MASTER_KEY = new TextEncoder().encode("qwertyuiopasdfgh");
/** Platform part of the data key on BK7231 ("P1"). */
export const TUYA_KEY_PART_1_BK7231 = new TextEncoder().encode("8710_2M");
/** Second part of the data key ("P2"). */
export const TUYA_KEY_PART_2 = new TextEncoder().encode("HHRRQbyemofrtytf");
/** Magic of the key block. */
export const MAGIC_KEY_BLOCK = 0x13579753;
/** Magics of data blocks (the second on TuyaOS 3). */
export const MAGIC_DATA_BLOCKS: readonly number[] = [0x98761234, 0x135726ab];
/** Block (flash sector) size. */
export const TUYA_BLOCK = 0x1000;
/** Page size inside a data block. */
export const TUYA_PAGE = 128;
/** Usual start of the storage on BK7231 (0x1EE000, "magic is at 2023424"). */
export const TUYA_USUAL_START_BK7231 = 0x1ee000;

function aes(key: Uint8Array, data: Uint8Array, encrypt: boolean): Uint8Array {
  const c = encrypt ? createCipheriv("aes-128-ecb", key, null) : createDecipheriv("aes-128-ecb", key, null);
  c.setAutoPadding(false);
  const a = c.update(data);
  const b = c.final();
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** AES-128-ECB decryption of whole 16-byte blocks. */
export function aesEcbDecrypt(key: Uint8Array, data: Uint8Array): Uint8Array {
  return aes(key, data, false);
}

/** AES-128-ECB encryption of whole 16-byte blocks. */
export function aesEcbEncrypt(key: Uint8Array, data: Uint8Array): Uint8Array {
  return aes(key, data, true);
}

/** The data key: byte i = P1[i mod 4] + P2[i] + inner[i] (mod 256). */
export function dataKey(inner: Uint8Array, part1: Uint8Array = TUYA_KEY_PART_1_BK7231): Uint8Array {
  const k = new Uint8Array(16);
  for (let i = 0; i < 16; i++) k[i] = (part1[i & 3] + TUYA_KEY_PART_2[i] + inner[i]) & 0xff;
  return k;
}

function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}
function u16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}

/** Sum of bytes, modulo 2^32: the blocks' checksum. */
export function byteSum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i++) s = (s + b[i]) >>> 0;
  return s;
}

/** One decrypted data block. */
export interface DataBlock {
  /** Offset of the block in the input. */
  offset: number;
  /** Block magic after decryption: 0x98761234, or 0x135726AB on TuyaOS 3. */
  magic: number;
  /** Block id (u16 at +8); a later block with the same id is a swap copy. */
  blockId: number;
  /** The checksum over bytes 8..4095 matched. */
  checksumValid: boolean;
  /** Decrypted bytes of the whole block. */
  plain: Uint8Array;
}

/** One index page: a named value and where its pages are. */
export interface IndexEntry {
  name: string;
  length: number;
  blockId: number;
  pageId: number;
  parts: { blockId: number; firstPage: number; lastPage: number }[];
}

/** A decoded storage. */
export interface TuyaStorage {
  /** Offset of the key block in the input. */
  keyBlockOffset: number;
  /** Lowest offset of a block that belongs to the storage (where it starts). */
  start: number;
  /** The inner (per-device) key. A secret. */
  innerKey: Uint8Array;
  /** The data key that opened the data blocks. A secret. */
  dataKey: Uint8Array;
  /** Every data block the data key opened, swap copies and bad checksums included, by offset. */
  blocks: DataBlock[];
  /** Raw values by name, in index order. */
  values: Map<string, Uint8Array>;
  /** Things that did not decode, one line each. */
  problems: string[];
}

/** Platform strings of the data key BK7231GUIFlashTool tries ("8721D": RTL8720D, "8711AM_4M": WRG1). */
export const TUYA_KEY_PART_1_OTHERS: readonly Uint8Array[] = ["8721D", "8711AM_4M"].map((t) =>
  new TextEncoder().encode(t)
);
/** Whole 16-byte bases BK7231GUIFlashTool also tries: data key byte i = base[i] + inner[i]. */
export const TUYA_KEY_BASES: readonly Uint8Array[] = [
  Uint8Array.from("9090a4a4a2c4f2cadadecce4e8f2e8cc".match(/../g)!, (h) => parseInt(h, 16)),
  TUYA_KEY_PART_2,
];

/** Every data key to try for `inner`, the BK7231 one first. */
export function dataKeyCandidates(inner: Uint8Array): Uint8Array[] {
  return [
    dataKey(inner),
    ...TUYA_KEY_PART_1_OTHERS.map((p1) => dataKey(inner, p1)),
    ...TUYA_KEY_BASES.map((b) => inner.map((x, i) => (x + b[i]) & 0xff)),
  ];
}

/** The candidate data key that opens the most blocks (the BK7231 key when none does better). */
function pickDataKey(data: Uint8Array, keyBlockOffset: number, inner: Uint8Array): Uint8Array {
  let best = dataKey(inner), bestCount = -1;
  for (const k of dataKeyCandidates(inner)) {
    let n = 0;
    for (let o = 0; o + TUYA_BLOCK <= data.length; o += TUYA_BLOCK) {
      if (
        o !== keyBlockOffset && MAGIC_DATA_BLOCKS.includes(u32(aesEcbDecrypt(k, data.subarray(o, o + 16)), 0))
      ) n++;
    }
    if (n > bestCount) best = k, bestCount = n;
  }
  return best;
}

/** Offsets of 4 KiB blocks in `data` that decrypt to a valid key block. */
export function findKeyBlocks(data: Uint8Array): number[] {
  const found: number[] = [];
  for (let o = 0; o + TUYA_BLOCK <= data.length; o += TUYA_BLOCK) {
    const head = aesEcbDecrypt(TUYA_MASTER_KEY, data.subarray(o, o + 32));
    if (u32(head, 0) !== MAGIC_KEY_BLOCK) continue;
    if (u32(head, 4) !== byteSum(head.subarray(8, 24))) continue;
    found.push(o);
  }
  return found;
}

/** Decode index pages and values of a storage whose key block is at `keyBlockOffset`. */
export function decodeStorage(data: Uint8Array, keyBlockOffset: number): TuyaStorage {
  const head = aesEcbDecrypt(TUYA_MASTER_KEY, data.subarray(keyBlockOffset, keyBlockOffset + 32));
  const innerKey = head.slice(8, 24);
  const key = pickDataKey(data, keyBlockOffset, innerKey);
  const problems: string[] = [];
  const blocks: DataBlock[] = [];
  for (let o = 0; o + TUYA_BLOCK <= data.length; o += TUYA_BLOCK) {
    if (o === keyBlockOffset) continue;
    const first = aesEcbDecrypt(key, data.subarray(o, o + 16));
    const magic = u32(first, 0);
    if (!MAGIC_DATA_BLOCKS.includes(magic)) continue;
    const plain = aesEcbDecrypt(key, data.subarray(o, o + TUYA_BLOCK));
    const checksumValid = u32(plain, 4) === byteSum(plain.subarray(8));
    if (!checksumValid) problems.push(`block at +0x${o.toString(16)}: checksum mismatch`);
    blocks.push({ offset: o, magic, blockId: u16(plain, 8), checksumValid, plain });
  }
  // the first valid copy of a block id wins; later ones are swap copies
  const byId = new Map<number, DataBlock>();
  for (const b of blocks) if (b.checksumValid && !byId.has(b.blockId)) byId.set(b.blockId, b);
  const index: IndexEntry[] = [];
  for (const b of byId.values()) index.push(...indexPages(b, problems));
  const values = new Map<string, Uint8Array>();
  for (const e of index) {
    if (values.has(e.name)) continue;
    const v = readValue(byId, e);
    if (typeof v === "string") problems.push(`${e.name}: ${v}`);
    else values.set(e.name, v);
  }
  const start = Math.min(keyBlockOffset, ...blocks.map((b) => b.offset));
  return { keyBlockOffset, start, innerKey, dataKey: key, blocks, values, problems };
}

function indexPages(b: DataBlock, problems: string[]): IndexEntry[] {
  const p = b.plain;
  const mapSize = p[14];
  const isIndex = (i: number) => (i >> 3) < mapSize && (p[15 + (i >> 3)] & (1 << (i & 7))) !== 0;
  const out: IndexEntry[] = [];
  for (let i = 1; i < TUYA_BLOCK / TUYA_PAGE; i++) {
    if (!isIndex(i)) continue;
    const g = p.subarray(i * TUYA_PAGE, (i + 1) * TUYA_PAGE);
    const blockId = u16(g, 8), pageId = g[10], partCount = u16(g, 11), nameLen = g[17];
    if (blockId !== b.blockId || pageId !== i || nameLen === 0 || 18 + nameLen + partCount * 4 > TUYA_PAGE) {
      problems.push(`block ${b.blockId} page ${i}: index page does not fit its place`);
      continue;
    }
    const name = new TextDecoder().decode(g.subarray(18, 18 + nameLen - 1));
    const parts = [];
    for (let k = 0; k < partCount; k++) {
      const o = 18 + nameLen + k * 4;
      parts.push({ blockId: u16(g, o), firstPage: g[o + 2], lastPage: g[o + 3] });
    }
    out.push({ name, length: u32(g, 4), blockId, pageId, parts });
  }
  return out;
}

function readValue(byId: Map<number, DataBlock>, e: IndexEntry): Uint8Array | string {
  const chunks: Uint8Array[] = [];
  for (const part of e.parts) {
    const b = byId.get(part.blockId);
    if (!b) return `block ${part.blockId} is missing`;
    for (let pg = part.firstPage; pg <= part.lastPage; pg++) {
      if (pg < 1 || pg >= TUYA_BLOCK / TUYA_PAGE) return `page ${pg} is out of range`;
      chunks.push(b.plain.subarray(pg * TUYA_PAGE, (pg + 1) * TUYA_PAGE));
    }
  }
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  if (all.length < e.length) return `value needs ${e.length} bytes, its pages hold ${all.length}`;
  return all.slice(0, e.length);
}

/** Find and decode the storage in `data` (a whole dump or the storage region alone). */
export function findStorage(data: Uint8Array): TuyaStorage | null {
  const keys = findKeyBlocks(data);
  let best: TuyaStorage | null = null;
  for (const k of keys) {
    const s = decodeStorage(data, k);
    if (!best || s.values.size > best.values.size) best = s;
  }
  return best;
}

/** A value to store with {@link encodeStorage}. */
export interface StorageValue {
  name: string;
  value: Uint8Array;
}

/**
 * Build a storage region (key block, then one data block per 30 data pages' worth of values)
 * holding `values`, encrypted with `innerKey`: the inverse of {@link findStorage}, for tests
 * and fixtures. Every value gets its own index page and consecutive data pages in one block.
 * `key` is the data key (default: the BK7231 one).
 */
export function encodeStorage(
  innerKey: Uint8Array,
  values: readonly StorageValue[],
  blocks = 2,
  key: Uint8Array = dataKey(innerKey),
): Uint8Array {
  const out = new Uint8Array(TUYA_BLOCK * (blocks + 1)).fill(0xff);
  const kb = new Uint8Array(TUYA_BLOCK);
  const w32 = (b: Uint8Array, o: number, v: number) => {
    b[o] = v & 0xff, b[o + 1] = (v >>> 8) & 0xff, b[o + 2] = (v >>> 16) & 0xff, b[o + 3] = v >>> 24;
  };
  w32(kb, 0, MAGIC_KEY_BLOCK);
  kb.set(innerKey, 8);
  w32(kb, 4, byteSum(innerKey));
  out.set(aesEcbEncrypt(TUYA_MASTER_KEY, kb), 0);
  let vi = 0;
  for (let blk = 0; blk < blocks; blk++) {
    const p = new Uint8Array(TUYA_BLOCK);
    w32(p, 0, MAGIC_DATA_BLOCKS[0]);
    p[8] = blk & 0xff, p[9] = blk >> 8;
    const mapSize = 4;
    p[14] = mapSize;
    let page = 1;
    while (vi < values.length) {
      const v = values[vi];
      const pages = Math.max(1, Math.ceil(v.value.length / TUYA_PAGE));
      if (page + 1 + pages > TUYA_BLOCK / TUYA_PAGE) break;
      const g = p.subarray(page * TUYA_PAGE, (page + 1) * TUYA_PAGE);
      const name = new TextEncoder().encode(v.name);
      w32(g, 4, v.value.length);
      g[8] = blk & 0xff, g[9] = blk >> 8, g[10] = page, g[11] = 1, g[12] = 0;
      g[17] = name.length + 1;
      g.set(name, 18);
      const o = 18 + name.length + 1;
      g[o] = blk & 0xff, g[o + 1] = blk >> 8, g[o + 2] = page + 1, g[o + 3] = page + pages;
      p[15 + (page >> 3)] |= 1 << (page & 7);
      p.set(v.value, (page + 1) * TUYA_PAGE);
      page += 1 + pages;
      vi++;
    }
    w32(p, 4, byteSum(p.subarray(8)));
    out.set(aesEcbEncrypt(key, p), (blk + 1) * TUYA_BLOCK);
  }
  if (vi < values.length) {
    throw new RangeError(`${values.length - vi} value(s) do not fit ${blocks} block(s)`);
  }
  return out;
}

/** The decrypted 4 KiB block at `offset` of `data`: the key block with the master key, others with the data key. */
export function decryptBlock(data: Uint8Array, offset: number, s: TuyaStorage): Uint8Array {
  const key = offset === s.keyBlockOffset ? TUYA_MASTER_KEY : s.dataKey;
  return aesEcbDecrypt(key, data.subarray(offset, offset + TUYA_BLOCK));
}
