/**
 * OpenBeken's configuration sector ("CFG", version 4): where it lives per chip, its header and
 * CRC8, and the offsets of the fields the flasher sets (Wi-Fi, MQTT, names, pins, start-up
 * commands). Facts and sources: docs/dump-formats.md §8. Encoder and decoder are ours.
 *
 * @module
 */

/** The config version this encoder writes. */
export const OBK_CONFIG_VERSION = 4;
/** Bytes the CRC8 covers up to, by version (v ≤ 3: 2016; v4: 3584). */
export function obkConfigLength(version: number): number {
  return version <= 3 ? 2016 : 3584;
}
/** GPIO slots in the pin tables. */
export const OBK_MAX_GPIO = 32;

/**
 * OpenBeken pin roles by number (the order of its role enum; index = the byte stored in the
 * pin-role table).
 */
export const OBK_ROLES: readonly string[] = [
  "None",
  "Rel",
  "Rel_n",
  "Btn",
  "Btn_n",
  "LED",
  "LED_n",
  "PWM",
  "WifiLED",
  "WifiLED_n",
  "Btn_Tgl_All",
  "Btn_Tgl_All_n",
  "dInput",
  "dInput_n",
  "TglChanOnTgl",
  "dInput_NoPullUp",
  "dInput_NoPullUp_n",
  "BL0937SEL",
  "BL0937CF",
  "BL0937CF1",
  "ADC",
  "SM2135DAT",
  "SM2135CLK",
  "BP5758D_DAT",
  "BP5758D_CLK",
  "BP1658CJ_DAT",
  "BP1658CJ_CLK",
  "PWM_n",
  "IRRecv",
  "IRSend",
  "Btn_NextColor",
  "Btn_NextColor_n",
  "Btn_NextDimmer",
  "Btn_NextDimmer_n",
  "AlwaysHigh",
  "AlwaysLow",
  "UCS1912_DIN",
  "SM16703P_DIN",
  "Btn_NextTemperature",
  "Btn_NextTemperature_n",
  "Btn_ScriptOnly",
  "Btn_ScriptOnly_n",
  "DHT11",
  "DHT12",
  "DHT21",
  "DHT22",
  "CHT8305_SDA",
  "CHT8305_SCK",
  "SHT3X_SDA",
  "SHT3X_SCK",
  "SoftSDA",
  "SoftSCL",
  "SM2235DAT",
  "SM2235CLK",
  "BridgeFWD",
  "BridgeREV",
  "Btn_SmartLED",
  "Btn_SmartLED_n",
  "DoorSnsrWSleep",
  "DoorSnsrWSleep_nPup",
  "BAT_ADC",
  "BAT_Relay",
  "TM1637_DIO",
  "TM1637_CLK",
  "BL0937SEL_n",
  "DoorSnsrWSleep_pd",
  "SGP_CLK",
  "SGP_DAT",
  "ADC_Button",
  "GN6932_CLK",
  "GN6932_DAT",
  "GN6932_STB",
  "TM1638_CLK",
  "TM1638_DAT",
  "TM1638_STB",
]; // deno-fmt-ignore

/** A text field: offset and capacity (NUL included). */
interface TextField {
  offset: number;
  size: number;
  secret?: boolean;
}

/** The text fields, by the names `--set` takes. */
export const OBK_TEXT_FIELDS: Readonly<Record<string, TextField>> = {
  "wifi.ssid": { offset: 0x14, size: 64 },
  "wifi.pass": { offset: 0x54, size: 64, secret: true },
  "mqtt.host": { offset: 0x94, size: 256 },
  "mqtt.client": { offset: 0x194, size: 64 },
  "mqtt.user": { offset: 0x1d4, size: 64 },
  "mqtt.pass": { offset: 0x214, size: 128, secret: true },
  "webapp": { offset: 0x298, size: 64 },
  "name.short": { offset: 0x2de, size: 32 },
  "name.long": { offset: 0x2fe, size: 64 },
  "ntp": { offset: 0x478, size: 32 },
  "mqtt.group": { offset: 0x554, size: 64 },
  "ping.host": { offset: 0x5a0, size: 64 },
  "startup": { offset: 0x5e0, size: 1568 },
  "wifi.ssid2": { offset: 0xc00, size: 64 },
  "wifi.pass2": { offset: 0xc84, size: 64, secret: true },
};

const OFF_VERSION = 0x04, OFF_FLAGS = 0x08, OFF_FLAGS2 = 0x0c, OFF_MQTT_PORT = 0x294;
const OFF_PIN_ROLES = 0x33e, OFF_PIN_CHANNELS = 0x35e, OFF_PIN_CHANNELS2 = 0x37e;
const OFF_BTN_SHORT = 0x4b8, OFF_BTN_LONG = 0x4b9, OFF_BTN_REPEAT = 0x4ba, OFF_BOOT_OK_TIME = 0x597;

/**
 * OpenBeken's CRC8 as BK7231 builds compute it: reflected polynomial 0x8C over signed chars,
 * so the shift of the running CRC keeps its top bit (`signed: false` is the variant other
 * platforms use).
 */
export function obkCrc8(data: Uint8Array, signed = true): number {
  let crc = 0;
  for (const byte of data) {
    let x = byte;
    for (let i = 0; i < 8; i++) {
      const sum = (crc ^ x) & 1;
      crc = signed ? ((crc >> 1) | (crc & 0x80)) & 0xff : crc >> 1;
      if (sum) crc ^= 0x8c;
      x >>= 1;
    }
  }
  return crc;
}

/** A pin's role and channels. */
export interface ObkPin {
  /** GPIO number (P<n>), 0..31. */
  pin: number;
  /** OpenBeken role name ("Rel", "Btn", …; "role <n>" for a number this table does not name). */
  role: string;
  /** Channel, from the pin-channel table at +0x35E. */
  channel: number;
  /** Second channel, from the table at +0x37E (used by roles that drive two channels). */
  channel2: number;
}

/** A decoded configuration. */
export interface ObkConfig {
  /** Config version, u32 at +4 (4 for what current OpenBeken and this encoder write). */
  version: number;
  /** The CRC8 at +3 matches bytes 4 .. len-1 (len 2016 for v ≤ 3, 3584 for v4). */
  crcValid: boolean;
  /** OpenBeken's flag bits 0..31, u32 at +0x08. */
  flags: number;
  /** Flag bits 32..63, u32 at +0x0C. */
  flags2: number;
  /** MQTT port, u32 at +0x294. */
  mqttPort: number;
  /** Text fields by the names `--set` takes (`wifi.ssid`, `mqtt.host`, …); secrets as stored. */
  text: Record<string, string>;
  /** Pins with a role (role byte not 0), by GPIO number. */
  pins: ObkPin[];
}

function readText(b: Uint8Array, f: TextField): string {
  const s = b.subarray(f.offset, f.offset + f.size);
  const end = s.indexOf(0);
  return new TextDecoder().decode(s.subarray(0, end < 0 ? s.length : end));
}

/** Decode the sector; null when it does not start with "CFG" (erased, or something else). */
export function decodeObkConfig(sector: Uint8Array): ObkConfig | null {
  if (sector.length < 8 || sector[0] !== 0x43 || sector[1] !== 0x46 || sector[2] !== 0x47) return null;
  const dv = new DataView(sector.buffer, sector.byteOffset, sector.length);
  const version = dv.getUint32(OFF_VERSION, true);
  const len = obkConfigLength(version);
  const crcValid = version <= 100 && sector.length >= len && obkCrc8(sector.subarray(4, len)) === sector[3];
  const text: Record<string, string> = {};
  for (const [k, f] of Object.entries(OBK_TEXT_FIELDS)) {
    if (f.offset + f.size <= sector.length) text[k] = readText(sector, f);
  }
  const pins: ObkPin[] = [];
  for (let p = 0; p < OBK_MAX_GPIO; p++) {
    const r = sector[OFF_PIN_ROLES + p];
    if (r === 0) continue;
    pins.push({
      pin: p,
      role: OBK_ROLES[r] ?? `role ${r}`,
      channel: sector[OFF_PIN_CHANNELS + p],
      channel2: sector[OFF_PIN_CHANNELS2 + p],
    });
  }
  return {
    version,
    crcValid,
    flags: dv.getUint32(OFF_FLAGS, true),
    flags2: dv.getUint32(OFF_FLAGS2, true),
    mqttPort: dv.getUint32(OFF_MQTT_PORT, true),
    text,
    pins,
  };
}

/** What to put into a configuration. */
export interface ObkSettings {
  /** `--set` values by field name (`wifi.ssid`, `mqtt.port`, …). */
  set: Record<string, string>;
  /** Pins as an OpenBeken template has them: `{"<gpio>": "<Role>;<channel>"}`. */
  pins?: Record<string, string>;
  /** Start-up commands appended to `startup`. */
  commands?: string[];
}

/** Names `--set` accepts besides the text fields. */
export const OBK_NUMBER_FIELDS = ["mqtt.port", "flags", "flags2"] as const;

/**
 * Build a configuration sector (`size` bytes, 0xFF after the config): from `base` (a valid
 * existing sector, kept except for what is set) or OpenBeken's defaults (names from `suffix`).
 */
export function encodeObkConfig(
  s: ObkSettings,
  o: { base?: Uint8Array; suffix: string; size?: number },
): Uint8Array {
  const len = obkConfigLength(OBK_CONFIG_VERSION);
  const out = new Uint8Array(o.size ?? 0x1000).fill(0xff);
  const cfg = new Uint8Array(len);
  const dv = new DataView(cfg.buffer);
  const baseOk = o.base && decodeObkConfig(o.base)?.crcValid;
  const writeText = (name: string, value: string) => {
    const f = OBK_TEXT_FIELDS[name];
    const bytes = new TextEncoder().encode(value);
    if (bytes.length >= f.size) {
      throw new RangeError(`${name} is ${bytes.length} bytes; it holds at most ${f.size - 1}`);
    }
    cfg.fill(0, f.offset, f.offset + f.size);
    cfg.set(bytes, f.offset);
  };
  if (baseOk) {
    cfg.set(
      o.base!.subarray(
        0,
        Math.min(len, obkConfigLength(new DataView(o.base!.buffer, o.base!.byteOffset).getUint32(4, true))),
      ),
    );
  } else {
    dv.setUint32(OFF_MQTT_PORT, 1883, true);
    cfg[OFF_BOOT_OK_TIME] = 5;
    cfg[OFF_BTN_SHORT] = 3;
    cfg[OFF_BTN_LONG] = 10;
    cfg[OFF_BTN_REPEAT] = 5;
    writeText("ping.host", "192.168.0.1");
    writeText("mqtt.user", "homeassistant");
    writeText("webapp", "https://openbekeniot.github.io/webapp/");
    writeText("mqtt.group", "bekens");
    writeText("ntp", "217.147.223.78");
    writeText("name.short", `obk${o.suffix}`);
    writeText("name.long", `OpenBekenX_${o.suffix}`);
    writeText("mqtt.client", `obk${o.suffix}`);
  }
  dv.setUint32(OFF_VERSION, OBK_CONFIG_VERSION, true);
  for (const [k, v] of Object.entries(s.set)) {
    if (k in OBK_TEXT_FIELDS) writeText(k, v);
    else if ((OBK_NUMBER_FIELDS as readonly string[]).includes(k)) {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`${k}=${v} is not a number`);
      dv.setUint32(k === "mqtt.port" ? OFF_MQTT_PORT : k === "flags" ? OFF_FLAGS : OFF_FLAGS2, n, true);
    } else {
      throw new RangeError(
        `unknown setting ${k}; known: ${[...Object.keys(OBK_TEXT_FIELDS), ...OBK_NUMBER_FIELDS].join(", ")}`,
      );
    }
  }
  if (s.pins) {
    cfg.fill(0, OFF_PIN_ROLES, OFF_PIN_ROLES + 3 * OBK_MAX_GPIO);
    for (const [gpio, text] of Object.entries(s.pins)) {
      const p = Number(gpio);
      const [role, ch, ch2] = text.split(";");
      const r = OBK_ROLES.indexOf(role);
      if (!Number.isInteger(p) || p < 0 || p >= OBK_MAX_GPIO) {
        throw new RangeError(`pin "${gpio}" is not a GPIO 0..31`);
      }
      if (r < 0) throw new RangeError(`pin ${gpio}: unknown OpenBeken role "${role}"`);
      cfg[OFF_PIN_ROLES + p] = r;
      cfg[OFF_PIN_CHANNELS + p] = Number(ch ?? 0) & 0xff;
      cfg[OFF_PIN_CHANNELS2 + p] = Number(ch2 ?? 0) & 0xff;
    }
  }
  if (s.commands?.length) {
    const f = OBK_TEXT_FIELDS.startup;
    const now = readText(cfg, f);
    const add = s.commands.filter((c) => !now.split(/\r?\n/).includes(c));
    if (add.length) writeText("startup", [now, ...add].filter((x) => x !== "").join("\r\n"));
  }
  cfg.set([0x43, 0x46, 0x47], 0);
  cfg[3] = obkCrc8(cfg.subarray(4, len));
  out.set(cfg, 0);
  return out;
}

/** The names of fields whose values are secrets. */
export function obkSecretFields(): string[] {
  return Object.entries(OBK_TEXT_FIELDS).filter(([, f]) => f.secret).map(([k]) => k);
}
