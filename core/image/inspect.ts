/**
 * What a flash dump holds, as one report: chip family and bootloader, partition layout, the
 * app image and the key it is built for, RBL containers, the Tuya storage with the board
 * description, and the RF/MAC sector. Pure: bytes in, a plain object out. Secrets are in the
 * report as found; {@link redactReport} masks them for printing.
 *
 * @module
 */

import { type ChipProfile, CHIPS } from "../chips/profiles.ts";
import { bootloaderByCrc } from "../chips/bootloaders.ts";
import { crc32 } from "../crc.ts";
import { classifyImage, type KeyClassification } from "./key_class.ts";
import { findRblInFlash, parseRblOta, type RblInFlash, type RblOta } from "./rbl.ts";
import { gunzipSync } from "node:zlib";
import { isRfMissingMac, parseRfTlv, RF_MISSING_MAC_PREFIX } from "./rf_tlv.ts";
import { findStorage } from "./tuya_storage.ts";
import { decodeObkConfig, type ObkConfig, obkSecretFields } from "./obk_config.ts";
import {
  type BoardDescription,
  decodeValue,
  describeBoard,
  maskSecrets,
  type TuyaValue,
  type ValueKind,
} from "./tuya_config.ts";

/** The bootloader / app window boundary every BK72xx uses. */
export const APP_START = 0x11000;

/** A named flash range. */
export interface Partition {
  /** "bootloader", "app", "rf", "openbeken-config" or "tuya-storage". */
  name: string;
  /** First byte's flash address. */
  start: number;
  /** Address just past the last byte (exclusive). */
  end: number;
}

/** The `inspect` report (the `--json` object; field names are documented in the README). */
export interface InspectReport {
  /** Input length in bytes. */
  size: number;
  /** "whole-flash", "storage-region" (a Tuya storage alone) or "image" (anything else). */
  kind: "whole-flash" | "storage-region" | "image";
  /**
   * The chip family the dump most likely comes from ("BK7231N", or a hedged "BK7231N or BK7231T
   * (Tuya N key)"; null when nothing points to one), and one sentence per clue that says so.
   */
  chip: { family: string | null; evidence: string[] };
  /** Flash size in bytes when the input is a whole-flash dump, else null. */
  flashSize: number | null;
  /**
   * The bootloader at 0x0: its name when its CRC-32 is a known one (else null), the CRC-32 of
   * its first 256 and 257 bytes as 8 hex digits (the two forms the known-bootloader table
   * uses), and the key it is built for. Null for an app image, a storage region, or input no
   * longer than 0x11000.
   */
  bootloader: {
    name: string | null;
    crc256: string;
    crc257: string;
    keyClass: KeyClassification;
  } | null;
  /** The chip profile's layout plus the Tuya storage, for a whole dump of a known family; else empty. */
  partitions: Partition[];
  /**
   * The application: its offset in the input (0x11000, or 0 for an app image stored for
   * 0x11000), its size from its RBL container (null without one), and the key it is built for.
   */
  app: { offset: number; size: number | null; keyClass: KeyClassification } | null;
  /** RBL containers (an OTA file's first), each with its data CRC-32 as 8 hex digits. */
  rbl: ((RblInFlash | RblOta) & { crc: string })[];
  /**
   * The Tuya storage: offsets in the input of its first block and of its key block; its block
   * count (the key block and every data block, swap copies included); the inner key as hex (a
   * secret); every value by storage key, decoded; the board from `user_param_key` (null without
   * one); and what did not decode, one line each.
   */
  tuya: {
    start: number;
    keyBlockOffset: number;
    blocks: number;
    innerKey: string;
    values: Record<string, { kind: ValueKind; value: TuyaValue }>;
    board: BoardDescription | null;
    problems: string[];
  } | null;
  /**
   * The RF/MAC sector: its offset in the input; whether its TLV structure holds and why not
   * (null when it does); the MAC ("aa:bb:cc:dd:ee:ff", null without a MAC record); and a
   * warning when the MAC ends in 00:00:00 (null otherwise).
   */
  rf: {
    offset: number;
    valid: boolean;
    problem: string | null;
    mac: string | null;
    macWarning: string | null;
  } | null;
  /** OpenBeken's configuration sector, when one is there. */
  obkConfig: (ObkConfig & { offset: number }) | null;
  /** What a user should act on (no RF sector, MAC missing, keys that differ, bad CRC), one line each. */
  warnings: string[];
}

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}

function isWholeFlash(n: number): boolean {
  return n >= 0x80000 && (n & (n - 1)) === 0;
}

/** The chip family a whole dump most likely comes from, and why. */
function guessFamily(
  boot: KeyClassification,
  bootName: string | null,
  rfAt: number | null,
  moduleChip: string | null,
): { family: string | null; profile: ChipProfile | null; evidence: string[] } {
  const ev: string[] = [];
  const known = bootName ? CHIPS.find((c) => c.bootloader === bootName) ?? null : null;
  if (known) ev.push(`bootloader ${bootName} ships on ${known.name}`);
  if (rfAt !== null) ev.push(`RF/MAC sector at 0x${rfAt.toString(16)}`);
  if (moduleChip) ev.push(`Tuya module carries a ${moduleChip}`);
  if (boot.class === "bypass") {
    ev.push("bootloader built for a bypass (zero) key");
    const p = known?.id === "bk7238" ? known : CHIPS.find((c) => c.id === "bk7231m")!;
    return { family: p.id === "bk7238" ? "BK7238" : "BK7231M/BL2028N (zero key)", profile: p, evidence: ev };
  }
  const byRf = rfAt === 0x1d0000 ? "bk7231n" : rfAt === 0x1e0000 ? "bk7231t" : null;
  const byModule = moduleChip ? CHIPS.find((c) => c.name === moduleChip)?.id ?? null : null;
  const id = known?.id ?? byModule ?? byRf;
  const p = id ? CHIPS.find((c) => c.id === id) ?? null : null;
  if (!p && boot.class === "tuya-n") {
    ev.push("bootloader built for the Tuya N key");
    return { family: "BK7231N or BK7231T (Tuya N key)", profile: null, evidence: ev };
  }
  return { family: p?.name ?? null, profile: p, evidence: ev };
}

/** Inspect `data`, a whole-flash dump, a Tuya storage region, or an image. */
export function inspectDump(data: Uint8Array): InspectReport {
  const warnings: string[] = [];
  const whole = isWholeFlash(data.length);
  const storage = findStorage(data);
  let tuya: InspectReport["tuya"] = null;
  let board: BoardDescription | null = null;
  if (storage) {
    const values: Record<string, { kind: ValueKind; value: TuyaValue }> = {};
    for (const [k, raw] of storage.values) values[k] = decodeValue(raw);
    const upk = values.user_param_key?.value;
    if (upk && typeof upk === "object" && !Array.isArray(upk)) board = describeBoard(upk);
    tuya = {
      start: storage.start,
      keyBlockOffset: storage.keyBlockOffset,
      blocks: storage.blocks.length + 1,
      innerKey: Array.from(storage.innerKey, (b) => b.toString(16).padStart(2, "0")).join(""),
      values,
      board,
      problems: storage.problems,
    };
  }
  const kind = whole ? "whole-flash" : storage && storage.start === 0 ? "storage-region" : "image";
  let bootloader: InspectReport["bootloader"] = null;
  let app: InspectReport["app"] = null;
  let rbl: InspectReport["rbl"] = [];
  let rf: InspectReport["rf"] = null;
  let chip: InspectReport["chip"] = { family: board?.moduleChip ?? null, evidence: [] };
  let partitions: Partition[] = [];
  // an app image ("UA") is stored for 0x11000 but starts at offset 0 of its file
  const identified = (c: KeyClassification) =>
    c.class !== "unknown" && !(c.class === "other" && c.key === null);
  const uaClass = kind === "image" ? classifyImage(data, APP_START) : null;
  const isUa = uaClass !== null && identified(uaClass) &&
    (data.length <= APP_START || !identified(classifyImage(data.subarray(APP_START), APP_START)));
  if (isUa) {
    rbl = findRblInFlash(data, [0]).map((r) => ({ ...r, crc: hex8(r.dataCrc) }));
    const appRbl = rbl.find((r) => "partitionStart" in r && r.partitionStart === 0);
    app = { offset: 0, size: appRbl ? appRbl.dataSize : null, keyClass: uaClass };
    chip = {
      family: uaClass.class === "bypass" ? "BK7231M/BL2028N (zero key)" : null,
      evidence: ["an app image (UA) stored for 0x11000, without a bootloader"],
    };
  } else if (kind !== "storage-region" && data.length > APP_START) {
    const c256 = crc32(data.subarray(0, 256)), c257 = crc32(data.subarray(0, 257));
    const name = bootloaderByCrc(c257)?.name ?? bootloaderByCrc(c256)?.name ?? null;
    const bootClass = classifyImage(data, 0);
    bootloader = { name, crc256: hex8(c256), crc257: hex8(c257), keyClass: bootClass };
    rbl = findRblInFlash(data, [0, APP_START]).map((r) => ({ ...r, crc: hex8(r.dataCrc) }));
    const appRbl = rbl.find((r) => "partitionStart" in r && r.partitionStart === APP_START);
    app = {
      offset: APP_START,
      size: appRbl ? appRbl.dataSize : null,
      keyClass: classifyImage(data.subarray(APP_START), APP_START),
    };
    let rfAt: number | null = null;
    // the usual offsets first, then any sector with a TLV header (as BK7231GUIFlashTool searches backups)
    const scan: number[] = [];
    for (let o = data.length - 0x1000; o >= APP_START; o -= 0x1000) {
      if (data[o] === 0x54 && data[o + 1] === 0x4c && data[o + 2] === 0x56 && data[o + 3] === 0) scan.push(o);
    }
    for (const off of [0x1d0000, 0x1e0000, 0x3fe000, 0x7fe000, ...scan]) {
      if (off + 0x1000 > data.length) continue;
      const t = parseRfTlv(data.subarray(off, off + 0x1000));
      if (t.valid || t.problem !== "erased" && t.problem !== "no TLV header") {
        rfAt = off;
        const macWarning = t.mac && isRfMissingMac(t.mac)
          ? `MAC ${t.mac} ends in 00:00:00, what chips report when the RF data is missing: restore RF (restore-rf)`
          : null;
        rf = { offset: off, valid: t.valid, problem: t.problem, mac: t.mac, macWarning };
        break;
      }
    }
    const g = guessFamily(bootClass, name, rfAt, board?.moduleChip ?? null);
    chip = { family: g.family, evidence: g.evidence };
    if (g.profile && whole) {
      const l = g.profile.layout;
      partitions = [
        { name: "bootloader", start: l.bootloader.start, end: l.bootloader.end },
        { name: "app", start: l.app.start, end: l.app.end },
        { name: "rf", start: l.rf.start, end: l.rf.end },
        { name: "openbeken-config", start: l.config.start, end: l.config.end },
      ];
      if (tuya) partitions.push({ name: "tuya-storage", start: tuya.start, end: data.length });
    }
    if (whole && !rf) {
      warnings.push(
        `no RF/MAC sector found: the chip will report a MAC like ${RF_MISSING_MAC_PREFIX}:00:00:00 (restore-rf)`,
      );
    }
    if (rf?.macWarning) warnings.push(rf.macWarning);
    if (
      bootClass.class !== "unknown" && app.keyClass.class !== "unknown" &&
      bootClass.class !== app.keyClass.class
    ) {
      warnings.push(
        `bootloader (${bootClass.class}) and app (${app.keyClass.class}) are built for different keys`,
      );
    }
  }
  let obkConfig: InspectReport["obkConfig"] = null;
  if (whole) {
    for (const off of [0x1d1000, 0x1e1000]) {
      const c = off + 0x1000 <= data.length ? decodeObkConfig(data.subarray(off, off + 0x1000)) : null;
      if (c) {
        obkConfig = { offset: off, ...c };
        if (!c.crcValid) warnings.push(`OpenBeken config at 0x${off.toString(16)}: CRC8 does not match`);
        break;
      }
    }
  }
  const ota = parseRblOta(data, (d) => new Uint8Array(gunzipSync(d)));
  if (ota) rbl = [{ ...ota, crc: hex8(ota.dataCrc) }, ...rbl];
  const known = (c: KeyClassification | undefined) => c !== undefined && c.class !== "unknown";
  if (
    !tuya && !rf && !obkConfig && rbl.length === 0 && !known(bootloader?.keyClass) && !known(app?.keyClass)
  ) {
    warnings.push(
      "no bootloader, app, RBL container, Tuya storage, RF sector or OpenBeken config found: not a Beken dump?",
    );
  }
  return {
    size: data.length,
    kind,
    chip,
    flashSize: whole ? data.length : null,
    bootloader,
    partitions,
    app,
    rbl,
    tuya,
    rf,
    obkConfig,
    warnings,
  };
}

/** The report with secrets masked: storage values by key name, the storage's inner key, OpenBeken passwords. */
export function redactReport(r: InspectReport): InspectReport {
  if (r.obkConfig) {
    const text = { ...r.obkConfig.text };
    for (const k of obkSecretFields()) if (text[k]) text[k] = `<masked: ${text[k].length} chars>`;
    r = { ...r, obkConfig: { ...r.obkConfig, text } };
  }
  if (!r.tuya) return r;
  const values: Record<string, { kind: ValueKind; value: TuyaValue }> = {};
  for (const [k, v] of Object.entries(r.tuya.values)) {
    values[k] = {
      kind: v.kind,
      value: v.kind === "binary"
        ? `<masked: binary, ${(String(v.value).length - 4) / 2} bytes>`
        : maskSecrets(v.value, k),
    };
  }
  return { ...r, tuya: { ...r.tuya, innerKey: "<masked>", values } };
}
