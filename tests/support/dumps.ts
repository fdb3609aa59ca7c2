/**
 * Synthetic whole-flash dumps built by our own encoders (never from real dumps): a bootloader
 * and app for a key, RBL trailers, an RF/MAC sector, and a Tuya storage with a board
 * configuration and planted secrets.
 */

import { frame } from "../../core/image/framing.ts";
import type { KeyWords } from "../../core/image/cipher.ts";
import { plainCode, storedImage } from "../../core/image/encode.ts";
import { buildRblHeader, fnv1a32 } from "../../core/image/rbl.ts";
import { crc32 } from "../../core/crc.ts";
import { templateRfTlvN } from "../../core/image/rf_tlv.ts";
import { encodeStorage } from "../../core/image/tuya_storage.ts";
import { unframe } from "../../core/image/framing.ts";
import { pseudoRandom } from "../../hil/images.ts";

/** Secrets planted in the synthetic storage: none may appear in output without --show-secrets. */
export const PLANTED = {
  ssid: "PlantedSsid-7f3a",
  passwd: "PlantedPass-91c2",
  psk: "PlantedPsk-4d5e6f708192a3b4c5d6e7f8091a2b3c",
  auzkey: "PlantedAuzKey-0a1b2c3d4e5f",
  uuid: "planteduuid0123",
  innerKey: new Uint8Array([
    0x11,
    0x22,
    0x33,
    0x44,
    0x55,
    0x66,
    0x77,
    0x88,
    0x99,
    0xaa,
    0xbb,
    0xcc,
    0xdd,
    0xee,
    0xf0,
    0x0f,
  ]),
};

/** The board of the synthetic storage, as stored in `user_param_key`. */
export const UPK =
  "{Jsonver:1.1.8,module:CB2S,rl1_pin:6,rl1_lv:1,rl2_pin:7,rl2_lv:0,bt1_pin:24,bt1_lv:0,netled1_pin:23,netled1_lv:0,ch_num:2,crc:42}";

/** The MAC of the synthetic RF sector. */
export const MAC = new Uint8Array([0x3a, 0x1f, 0x8d, 0x12, 0x34, 0x56]);

const enc = new TextEncoder();

/** A Tuya storage region (key block + 2 data blocks) with the board and planted secrets. */
export function syntheticStorage(): Uint8Array {
  return encodeStorage(PLANTED.innerKey, [
    {
      name: "gw_bi",
      value: enc.encode(
        JSON.stringify({
          uuid: PLANTED.uuid,
          psk_key: PLANTED.psk,
          auth_key: PLANTED.auzkey,
          ap_ssid: "SmartLife",
        }),
      ),
    },
    { name: "user_param_key", value: enc.encode(UPK) },
    {
      name: "gw_wsm",
      value: enc.encode(JSON.stringify({ ssid: PLANTED.ssid, passwd: PLANTED.passwd, md: 0 })),
    },
    { name: "em_sys_env", value: enc.encode("bk7231n") },
  ]);
}

/** A stored partition (bootloader at 0 or app at 0x11000) with its RBL trailer (`pad` bytes of padding counted). */
function partition(
  name: string,
  key: KeyWords,
  start: number,
  end: number,
  size: number,
  pad: number,
): Uint8Array {
  const body = storedImage(plainCode(pseudoRandom(`${name}/code`, size)), key, start);
  const data = unframe(body).data;
  const h = buildRblHeader({
    encryption: "none",
    compression: "none",
    timestamp: 1700000000,
    name,
    version: "1.00",
    sn: "0",
    // the packager counts the padding as `pad` bytes of value `pad` (computed here independently)
    dataCrc: crc32(Uint8Array.from(data, (b, i) => (i >= data.length - pad ? pad : b))),
    dataHash: fnv1a32(data.subarray(0, data.length - pad)),
    rawSize: data.length - pad,
    dataSize: data.length,
  });
  const out = new Uint8Array(end - start).fill(0xff);
  out.set(body);
  const trailer = frame(h);
  const at = Math.floor((end - start - trailer.length) / 34) * 34;
  out.set(trailer, at);
  return out;
}

/** A 2 MiB BK7231N-layout dump: bootloader and app for `key`, RF sector, Tuya storage. */
export function syntheticDump(key: KeyWords, opts: { storage?: boolean; rf?: boolean } = {}): Uint8Array {
  const d = new Uint8Array(0x200000).fill(0xff);
  d.set(partition("bootloader", key, 0, 0x11000, 0x3000, 4), 0);
  d.set(partition("app", key, 0x11000, 0x40000, 0x8000, 16), 0x11000);
  if (opts.rf ?? true) d.set(templateRfTlvN(MAC), 0x1d0000);
  if (opts.storage ?? true) d.set(syntheticStorage(), 0x1ee000);
  return d;
}
