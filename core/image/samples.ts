/**
 * Sample images for rehearsing on the emulator: a stock BK7231M-class device (zero-key
 * bootloader and app, RF sector, a Tuya configuration with a demo board) and whole-flash
 * ("QIO") and app ("UA") images built for the Tuya N key and for the zero key. Their code is
 * pseudo-random bytes behind an ARM vector table: the emulator boots them, a real chip would
 * run garbage. Every one carries {@link SAMPLE_MARK} as its RBL name, and `write-flash`
 * refuses them on anything but a virtual port.
 *
 * @module
 */

import { type KeyWords, TUYA_N_KEY, ZERO_KEY } from "./cipher.ts";
import { plainCode, storedImage } from "./encode.ts";
import { frame, unframe } from "./framing.ts";
import { buildRblHeader, fnv1a32, rblDataCrc } from "./rbl.ts";
import { templateRfTlvN } from "./rf_tlv.ts";
import { encodeStorage } from "./tuya_storage.ts";

/** The RBL name every sample image carries. */
export const SAMPLE_MARK = "bekenlab-sample";

function noise(seed: string, n: number): Uint8Array {
  let x = 2166136261;
  for (const ch of seed) x = Math.imul(x ^ ch.charCodeAt(0), 16777619) >>> 0;
  x ||= 1;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A partition as a packager stores it: code for `key`, RBL trailer closing the partition. */
function partition(seed: string, key: KeyWords, start: number, end: number, codeSize: number): Uint8Array {
  const body = storedImage(plainCode(noise(seed, codeSize)), key, start);
  const data = unframe(body).data;
  const trailer = frame(buildRblHeader({
    encryption: "none",
    compression: "none",
    timestamp: 1764979200,
    name: SAMPLE_MARK,
    version: "1.00",
    sn: seed,
    dataCrc: rblDataCrc(data),
    dataHash: fnv1a32(data),
    rawSize: data.length,
    dataSize: data.length,
  }));
  const out = new Uint8Array(end - start).fill(0xff);
  out.set(body);
  out.set(trailer, Math.floor((end - start - trailer.length) / 34) * 34);
  return out;
}

/** A whole-flash image: bootloader and app (up to `appEnd`) built for `key`. */
export function sampleQio(key: KeyWords, name: string, appEnd = 0x80000): Uint8Array {
  const d = new Uint8Array(appEnd).fill(0xff);
  d.set(partition(`${name}/bootloader`, key, 0, 0x11000, 0x3000), 0);
  d.set(partition(`${name}/app`, key, 0x11000, appEnd, 0x20000), 0x11000);
  return d;
}

/** The app part of {@link sampleQio}, to write at 0x11000. */
export function sampleUa(key: KeyWords, name: string, appEnd = 0x80000): Uint8Array {
  return sampleQio(key, name, appEnd).slice(0x11000);
}

/** A 2 MiB readout of a stock BK7231M-class device with a Tuya configuration (demo values, no secrets). */
export function sampleStockM(): Uint8Array {
  const d = new Uint8Array(0x200000).fill(0xff);
  d.set(sampleQio(ZERO_KEY, "stock-bk7231m", 0x130000), 0);
  d.set(templateRfTlvN(new Uint8Array([0x3a, 0x1f, 0x8d, 0x5a, 0x3c, 0x01])), 0x1d0000);
  const enc = new TextEncoder();
  d.set(
    encodeStorage(noise("stock/inner", 16), [
      {
        name: "user_param_key",
        value: enc.encode(
          "{Jsonver:1.1.8,module:CB2S,rl1_pin:6,rl1_lv:1,bt1_pin:24,bt1_lv:0,netled1_pin:8,netled1_lv:0,ch_num:1}",
        ),
      },
      {
        name: "gw_wsm",
        value: enc.encode(JSON.stringify({ ssid: "demo-ssid", passwd: "demo-pass", md: 0 })),
      },
    ]),
    0x1ee000,
  );
  return d;
}

/** The sample files by name. */
export function sampleFiles(): Record<string, Uint8Array> {
  return {
    "stock-bk7231m.bin": sampleStockM(),
    "sample-bk7231n-qio.bin": sampleQio(TUYA_N_KEY, "bk7231n"),
    "sample-bk7231m-qio.bin": sampleQio(ZERO_KEY, "bk7231m"),
    "sample-bk7231n-ua.bin": sampleUa(TUYA_N_KEY, "bk7231n"),
    "sample-bk7231m-ua.bin": sampleUa(ZERO_KEY, "bk7231m"),
  };
}

/** Whether `data` holds a sample image's RBL name (framed headers keep the name in their first chunk). */
export function isSampleImage(data: Uint8Array): boolean {
  const mark = new TextEncoder().encode(SAMPLE_MARK);
  outer: for (
    let i = data.indexOf(mark[0]);
    i >= 0 && i + mark.length <= data.length;
    i = data.indexOf(mark[0], i + 1)
  ) {
    for (let k = 1; k < mark.length; k++) if (data[i + k] !== mark[k]) continue outer;
    return true;
  }
  return false;
}
