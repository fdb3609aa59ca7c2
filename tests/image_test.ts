import assert from "node:assert/strict";
import { BekenCipher, isBypassKey, TUYA_N_KEY, ZERO_KEY } from "../core/image/cipher.ts";
import { crc16cms } from "../core/image/crc16.ts";
import { plainCode, storedImage } from "../core/image/encode.ts";
import { frame, logicalAddress, unframe } from "../core/image/framing.ts";
import { inspectDump, redactReport } from "../core/image/inspect.ts";
import { classifyImage, parseKeyText, sameCipher } from "../core/image/key_class.ts";
import { checkImageKey } from "../core/image/key_check.ts";
import { buildRblHeader, fnv1a32, parseRblHeader } from "../core/image/rbl.ts";
import { crc32 } from "../core/crc.ts";
import { gzipSync } from "node:zlib";
import { buildRfTlv, isRfMissingMac, parseRfTlv, templateRfTlvN } from "../core/image/rf_tlv.ts";
import { decodeValue, describeBoard, obkTemplate, parseTuyaJson } from "../core/image/tuya_config.ts";
import { dataKey, dataKeyCandidates, encodeStorage, findStorage } from "../core/image/tuya_storage.ts";
import { FlashError } from "../core/errors.ts";
import { pseudoRandom } from "../hil/images.ts";
import { MAC, PLANTED, syntheticDump, syntheticStorage } from "./support/dumps.ts";

/** Same settings word as the N key, other coef0/coef2: the pad differs from N's by a constant. */
const NEAR_KEY = [0x12345678, TUYA_N_KEY[1], 0x0badf00d, TUYA_N_KEY[3]] as const;
/** Another settings word (pn15 and pn16 on): nothing to identify. */
const OTHER_KEY = [0x12345678, 0x9abcdef0, 0x0badf00d, 0x12345670] as const;

Deno.test("CRC-16/CMS check value and framing round trip", () => {
  assert.equal(crc16cms(new TextEncoder().encode("123456789")), 0xaee7);
  const data = pseudoRandom("frame", 100);
  const framed = frame(data);
  assert.equal(framed.length, 4 * 34);
  const u = unframe(framed);
  assert.deepEqual(u.data.subarray(0, 100), data);
  assert.equal(u.valid, 4);
  framed[40] ^= 1;
  const bad = unframe(framed);
  assert.equal(bad.invalid, 1);
  assert.equal(bad.firstInvalid, 34);
  assert.equal(logicalAddress(0x11000), 0x10000);
});

Deno.test("the cipher is its own inverse, depends on the address, and a bypass key changes nothing", () => {
  const plain = pseudoRandom("cipher", 256);
  const n = new BekenCipher(TUYA_N_KEY);
  const c = n.apply(plain.slice(), 0x10000);
  assert.notDeepEqual(c, plain);
  assert.deepEqual(n.apply(c.slice(), 0x10000), plain);
  assert.notDeepEqual(n.apply(plain.slice(), 0x10004), c);
  assert.ok(isBypassKey(ZERO_KEY));
  assert.ok(isBypassKey([0x00df6a00, 0x00df6a00, 0x00df6a00, 0x00df6a00]));
  assert.ok(!isBypassKey(TUYA_N_KEY));
  assert.deepEqual(new BekenCipher(ZERO_KEY).apply(plain.slice(), 0x10000), plain);
});

Deno.test("key classification: N key, bypass key, another key, no framing", () => {
  const code = plainCode(pseudoRandom("cls", 512));
  const n = classifyImage(storedImage(code, TUYA_N_KEY, 0x11000), 0x11000);
  assert.equal(n.class, "tuya-n");
  assert.match(n.evidence, /Tuya N key/);
  assert.equal(classifyImage(storedImage(code, ZERO_KEY, 0x11000), 0x11000).class, "bypass");
  const other = classifyImage(storedImage(code, OTHER_KEY, 0x11000), 0x11000);
  assert.equal(other.class, "other");
  assert.equal(other.key, null);
  const nearC = classifyImage(storedImage(code, NEAR_KEY, 0x11000), 0x11000);
  assert.equal(nearC.class, "other");
  assert.ok(sameCipher(parseKeyText(nearC.key!)!, NEAR_KEY), "the identified key encrypts as the real one");
  assert.ok(!sameCipher(NEAR_KEY, TUYA_N_KEY));
  // a key differing from N only in coef2 is identified
  const near = [TUYA_N_KEY[0], TUYA_N_KEY[1], TUYA_N_KEY[2] ^ 0x02000000, TUYA_N_KEY[3]] as const;
  const nc = classifyImage(storedImage(code, near, 0), 0);
  assert.equal(nc.class, "other");
  assert.equal(nc.key, "510fb093 a3cbeadc 5b93a17e c7adeb03");
  assert.equal(classifyImage(code, 0x11000).class, "unknown");
  assert.equal(classifyImage(new Uint8Array(0x1000).fill(0xff), 0x11000).class, "unknown");
  assert.deepEqual(parseKeyText("510fb093 a3cbeadc 5993a17e c7adeb03"), TUYA_N_KEY);
});

Deno.test("key check before writing: refuses the other class with the remedy, --skip-key-check notes it", () => {
  const app = storedImage(plainCode(pseudoRandom("kc", 512)), TUYA_N_KEY, 0x11000);
  const zero = "00000000 00000000 00000000 00000000";
  assert.throws(() => checkImageKey(app, 0x11000, zero, false), (e: unknown) => {
    assert.ok(e instanceof FlashError);
    assert.equal(e.code, "WRONG_KEY");
    assert.match(e.remedy, /BK7231M build/);
    return true;
  });
  assert.match(checkImageKey(app, 0x11000, zero, true)!.note, /skip-key-check/);
  assert.match(
    checkImageKey(app, 0x11000, "510fb093 a3cbeadc 5993a17e c7adeb03", false)!.note,
    /as the chip/,
  );
  assert.match(
    checkImageKey(pseudoRandom("raw", 4096), 0x11000, zero, false)!.note,
    /could not be determined/,
  );
  assert.equal(checkImageKey(app, 0x20000, zero, false), null);
  // a whole-flash image at 0 is checked by its app at 0x11000
  const whole = syntheticDump(TUYA_N_KEY);
  assert.throws(() => checkImageKey(whole, 0, zero, false), /will not boot/);
});

Deno.test("RBL header and RF TLV round trip", () => {
  const h = buildRblHeader({
    encryption: "none",
    compression: "gzip",
    timestamp: 1,
    name: "app",
    version: "1.2.3",
    sn: "x",
    dataCrc: 5,
    dataHash: 6,
    rawSize: 7,
    dataSize: 8,
  });
  const p = parseRblHeader(h)!;
  assert.equal(p.name, "app");
  assert.equal(p.compression, "gzip");
  assert.ok(p.headerCrcValid);
  h[20] ^= 1;
  assert.ok(!parseRblHeader(h)!.headerCrcValid);

  // an OTA file: header unframed at 0, gzip data after it
  const raw = pseudoRandom("ota", 5000);
  const gz = new Uint8Array(gzipSync(raw));
  const ota = new Uint8Array(96 + gz.length);
  ota.set(gz, 96);
  ota.set(buildRblHeader({
    encryption: "none",
    compression: "gzip",
    timestamp: 2,
    name: "app",
    version: "9",
    sn: "",
    dataCrc: crc32(gz),
    dataHash: fnv1a32(raw),
    rawSize: raw.length,
    dataSize: gz.length,
  }));
  const o = inspectDump(ota).rbl[0];
  assert.deepEqual([o.name, o.compression, o.dataCrcValid, o.hashValid], ["app", "gzip", true, true]);
  ota[200] ^= 1;
  const o2 = inspectDump(ota).rbl[0];
  assert.deepEqual([o2.dataCrcValid, o2.hashValid], [false, false]);

  const t = parseRfTlv(templateRfTlvN(MAC));
  assert.ok(t.valid, t.problem ?? "");
  assert.equal(t.mac, "3a:1f:8d:12:34:56");
  const broken = templateRfTlvN(MAC);
  broken[4] = 0xff;
  assert.ok(!parseRfTlv(broken).valid);
  assert.equal(parseRfTlv(new Uint8Array(4096).fill(0xff)).problem, "erased");
  const longRecord = templateRfTlvN(MAC);
  longRecord[20] = 0x40; // the first record's length runs past its group
  assert.match(parseRfTlv(longRecord).problem ?? "", /runs past its group/);
  const padded = buildRfTlv([{ tag: 0x22222200, records: [{ tag: 0x22222201, data: new Uint8Array(4) }] }]);
  assert.ok(parseRfTlv(padded).valid);
  assert.ok(isRfMissingMac("c8:47:8c:00:00:00"));
  assert.ok(!isRfMissingMac("c8:47:8c:00:00:01"));
});

Deno.test("Tuya storage: encode then find and decode the same values", () => {
  const inner = new Uint8Array(16).map((_, i) => i * 7);
  const values = [
    { name: "user_param_key", value: new TextEncoder().encode("{module:CB3S,rl1_pin:8}") },
    { name: "big", value: pseudoRandom("big", 700) },
  ];
  const region = encodeStorage(inner, values);
  const s = findStorage(region)!;
  assert.equal(s.start, 0);
  assert.deepEqual(s.innerKey, inner);
  assert.deepEqual(s.values.get("big"), values[1].value);
  assert.deepEqual(decodeValue(s.values.get("user_param_key")!).value, { module: "CB3S", rl1_pin: 8 });
  assert.equal(dataKey(new Uint8Array(16))[0], (0x38 + 0x48) & 0xff);
  // a region shifted into a larger buffer is found where it is
  const dump = new Uint8Array(0x20000).fill(0xff);
  dump.set(region, 0x10000);
  assert.equal(findStorage(dump)!.start, 0x10000);
  // a storage whose data key uses another platform string is opened too
  for (const k of dataKeyCandidates(inner).slice(1)) {
    const other = findStorage(encodeStorage(inner, values, 2, k))!;
    assert.deepEqual(other.values.get("big"), values[1].value);
  }
  // a corrupted block is reported, not decoded
  region[0x1000 + 100] ^= 0xff;
  assert.ok(findStorage(region)!.problems.some((p) => p.includes("checksum")));
});

Deno.test("Tuya JSON and the board description, and the OpenBeken template", () => {
  assert.deepEqual(parseTuyaJson("{a:1,b:x.y,c:[1,2],d:{e:007}}"), {
    a: 1,
    b: "x.y",
    c: [1, 2],
    d: { e: "007" },
  });
  const b = describeBoard(parseTuyaJson(
    "{module:CB2S,rl1_pin:6,rl1_lv:1,bt_pin:24,netled_pin:23,netled_lv:1,r_pin:9,ele_pin:10,vi_pin:11,sel_pin_pin:12,baud:9600}",
  ) as Record<string, never>);
  const roles = Object.fromEntries(b.pins.map((p) => [p.pin, `${p.role};${p.channel}`]));
  assert.deepEqual(roles, {
    6: "Rel;1",
    24: "Btn;1",
    23: "WifiLED;0",
    9: "PWM;0",
    10: "BL0937CF;0",
    11: "BL0937CF1;0",
    12: "BL0937SEL;0",
  });
  assert.equal(b.uartBaud, 9600);
  const t = obkTemplate(b, "BK7231N");
  assert.equal(t.pins["6"], "Rel;1");
  assert.equal(t.chip, "BK7231N");
  assert.equal(t.board, "CB2S");
  assert.match(t.command, /startDriver TuyaMCU/);
  assert.match(t.command, /startDriver BL0937/);
});

Deno.test("inspect a synthetic whole dump: chip, keys, RBL checks, storage, board, RF", () => {
  const r = inspectDump(syntheticDump(TUYA_N_KEY));
  assert.equal(r.kind, "whole-flash");
  assert.equal(r.chip.family, "BK7231N");
  assert.equal(r.bootloader!.keyClass.class, "tuya-n");
  assert.equal(r.app!.keyClass.class, "tuya-n");
  assert.deepEqual(r.rbl.map((x) => [x.name, x.headerCrcValid, x.dataCrcValid, x.hashValid]), [
    ["bootloader", true, true, true],
    ["app", true, true, true],
  ]);
  assert.equal(r.tuya!.start, 0x1ee000);
  assert.equal(r.tuya!.board!.module, "CB2S");
  assert.equal(r.rf!.mac, "3a:1f:8d:12:34:56");
  const m = inspectDump(syntheticDump(ZERO_KEY, { storage: false, rf: false }));
  assert.equal(m.chip.family, "BK7231M/BL2028N (zero key)");
  assert.equal(m.app!.keyClass.class, "bypass");
  assert.equal(m.tuya, null);
  assert.ok(m.warnings.some((w) => w.includes("restore-rf")));
  // a sector whose MAC ends in 00:00:00 is flagged
  const zeroed = syntheticDump(TUYA_N_KEY);
  zeroed.set(templateRfTlvN(new Uint8Array([0xc8, 0x47, 0x8c, 0, 0, 0])), 0x1d0000);
  const z = inspectDump(zeroed);
  assert.match(z.rf!.macWarning ?? "", /restore-rf/);
  assert.ok(z.warnings.some((w) => w.includes("c8:47:8c:00:00:00")));
  assert.equal(r.rf!.macWarning, null);
  const region = inspectDump(syntheticStorage());
  assert.equal(region.kind, "storage-region");
  assert.equal(region.tuya!.board!.pins.length, 4);
});

Deno.test("secrets are masked in the redacted report", () => {
  const r = inspectDump(syntheticDump(TUYA_N_KEY));
  const shown = JSON.stringify(redactReport(r));
  const full = JSON.stringify(r);
  const hexKey = Array.from(PLANTED.innerKey, (b) => b.toString(16).padStart(2, "0")).join("");
  for (const s of [PLANTED.ssid, PLANTED.passwd, PLANTED.psk, PLANTED.auzkey, PLANTED.uuid, hexKey]) {
    assert.ok(full.includes(s), `the full report has ${s}`);
    assert.ok(!shown.includes(s), `the redacted report leaks ${s}`);
  }
});
