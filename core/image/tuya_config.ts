/**
 * The board a Tuya configuration describes: the description read from `user_param_key`
 * (module, pins with roles and channels), the one table that maps Tuya pin keys to OpenBeken
 * pin roles, and the OpenBeken template made from it. Decoding the values themselves and
 * masking their secrets is `tuya_values.ts`. Key names and roles: docs/dump-formats.md §5.
 *
 * @module
 */

import type { TuyaValue } from "./tuya_values.ts";

export {
  decodeValue,
  maskSecrets,
  NOT_SECRET_KEY,
  parseTuyaJson,
  SECRET_KEY,
  secretLeaves,
  type TuyaValue,
  type ValueKind,
} from "./tuya_values.ts";

/** A pin role in OpenBeken's names, with its channel. */
export interface PinAssignment {
  /** GPIO number (P<n>). */
  pin: number;
  /** The Tuya key it came from. */
  key: string;
  /** What it is, in words ("relay", "button", "Wi-Fi LED", …). */
  function: string;
  /** OpenBeken role name ("Rel", "Btn", "WifiLED_n", …). */
  role: string;
  /** OpenBeken channel: the number in the key (`rl2_pin`: 2), else the rule's channel, else 0. */
  channel: number;
}

/** One row of the Tuya key → OpenBeken role table. */
export interface RoleRule {
  /** Key pattern; `(\d+)` captures the channel where there is one. */
  key: RegExp;
  /** What the pin does, in words (see {@link PinAssignment}). */
  function: string;
  /** Role when the level key says active high (1). */
  high: string;
  /** Role when the level key says active low (0). */
  low: string;
  /** Level assumed without a level key. */
  defaultLevel: 0 | 1;
  /** Channel when the key has no number. */
  channel?: number;
}

/**
 * The Tuya key → OpenBeken role table (keys as BK7231GUIFlashTool's extractor reads them;
 * roles as OpenBeken names them). The level key is the pin key with `_pin` replaced by `_lv`.
 */
export const TUYA_PIN_ROLES: readonly RoleRule[] = [
  { key: /^rl(\d+)_pin$/, function: "relay", high: "Rel", low: "Rel_n", defaultLevel: 1 },
  { key: /^rl_on(\d+)_pin$/, function: "bridge relay on", high: "Rel", low: "Rel_n", defaultLevel: 1 },
  { key: /^rl_off(\d+)_pin$/, function: "bridge relay off", high: "Rel_n", low: "Rel_n", defaultLevel: 1 },
  { key: /^bt(\d+)_pin$/, function: "button", high: "Btn_n", low: "Btn", defaultLevel: 0 },
  { key: /^bt_pin$/, function: "button", high: "Btn_n", low: "Btn", defaultLevel: 0, channel: 1 },
  { key: /^k(\d+)pin_pin$/, function: "button", high: "Btn_n", low: "Btn", defaultLevel: 0 },
  { key: /^reset_pin$/, function: "button", high: "Btn_n", low: "Btn", defaultLevel: 0, channel: 0 },
  {
    key: /^total_bt_pin$/,
    function: "pair/toggle-all button",
    high: "Btn_Tgl_All_n",
    low: "Btn_Tgl_All",
    defaultLevel: 0,
    channel: 0,
  },
  { key: /^led(\d+)_pin$/, function: "LED", high: "LED", low: "LED_n", defaultLevel: 1 },
  {
    key: /^netled\d*_pin$/,
    function: "Wi-Fi LED",
    high: "WifiLED",
    low: "WifiLED_n",
    defaultLevel: 0,
    channel: 0,
  },
  {
    key: /^wfst(_pin)?$/,
    function: "Wi-Fi LED",
    high: "WifiLED",
    low: "WifiLED_n",
    defaultLevel: 0,
    channel: 0,
  },
  {
    key: /^status_led_pin$/,
    function: "status LED",
    high: "WifiLED",
    low: "WifiLED_n",
    defaultLevel: 0,
    channel: 0,
  },
  { key: /^door(\d+)_magt_pin$/, function: "door sensor", high: "dInput", low: "dInput_n", defaultLevel: 1 },
  { key: /^r_pin$/, function: "PWM red", high: "PWM", low: "PWM_n", defaultLevel: 1, channel: 0 },
  { key: /^g_pin$/, function: "PWM green", high: "PWM", low: "PWM_n", defaultLevel: 1, channel: 1 },
  { key: /^b_pin$/, function: "PWM blue", high: "PWM", low: "PWM_n", defaultLevel: 1, channel: 2 },
  { key: /^c_pin$/, function: "PWM cool white", high: "PWM", low: "PWM_n", defaultLevel: 1, channel: 3 },
  { key: /^w_pin$/, function: "PWM warm white", high: "PWM", low: "PWM_n", defaultLevel: 1, channel: 4 },
  {
    key: /^(ele_pin|epin)$/,
    function: "BL0937 CF",
    high: "BL0937CF",
    low: "BL0937CF",
    defaultLevel: 1,
    channel: 0,
  },
  {
    key: /^(vi_pin|ivpin)$/,
    function: "BL0937 CF1",
    high: "BL0937CF1",
    low: "BL0937CF1",
    defaultLevel: 1,
    channel: 0,
  },
  {
    key: /^(sel_pin_pin|ivcpin)$/,
    function: "BL0937 SEL",
    high: "BL0937SEL",
    low: "BL0937SEL",
    defaultLevel: 1,
    channel: 0,
  },
  {
    key: /^(irpin|infrr)$/,
    function: "IR receiver",
    high: "IRRecv",
    low: "IRRecv",
    defaultLevel: 1,
    channel: 0,
  },
  { key: /^infre$/, function: "IR transmitter", high: "IRSend", low: "IRSend", defaultLevel: 1, channel: 0 },
  { key: /^remote_io$/, function: "RF remote", high: "RCRecv", low: "RCRecv", defaultLevel: 1, channel: 0 },
  {
    key: /^samp_sw_pin$/,
    function: "battery relay",
    high: "BAT_Relay",
    low: "BAT_Relay",
    defaultLevel: 1,
    channel: 0,
  },
  {
    key: /^samp_pin$/,
    function: "battery ADC",
    high: "BAT_ADC",
    low: "BAT_ADC",
    defaultLevel: 1,
    channel: 0,
  },
  {
    key: /^backlit_io_pin$/,
    function: "backlight LED",
    high: "LED",
    low: "LED_n",
    defaultLevel: 1,
    channel: 0,
  },
  {
    key: /^mosi$/,
    function: "SPI LED data",
    high: "SM16703P_DIN",
    low: "SM16703P_DIN",
    defaultLevel: 1,
    channel: 0,
  },
];

/** The I2C LED driver chosen by which current key is present (clock/data roles). */
const I2C_LED_DRIVERS: readonly { keys: readonly string[]; clk: string; dat: string }[] = [
  { keys: ["ehccur", "wampere", "iicccur"], clk: "SM2135CLK", dat: "SM2135DAT" },
  { keys: ["dccur"], clk: "BP5758D_CLK", dat: "BP5758D_DAT" },
  { keys: ["cjwcur"], clk: "BP1658CJ_CLK", dat: "BP1658CJ_DAT" },
  { keys: ["2235ccur"], clk: "SM2235CLK", dat: "SM2235DAT" },
  { keys: ["kp58wcur"], clk: "KP18058_CLK", dat: "KP18058_DAT" },
];

/** What `user_param_key` says about the board. */
export interface BoardDescription {
  /** Tuya module name ("CB2S"), when given. */
  module: string | null;
  /** The chip that module carries, when the module is known. */
  moduleChip: string | null;
  /** Each pin key with a GPIO number and a known role, and the I2C LED driver pins; by GPIO. */
  pins: PinAssignment[];
  /** Channel count (`ch_num`). */
  channels: number | null;
  /** TuyaMCU / serial energy meter: the `baud` key, when present. */
  uartBaud: number | null;
  /** The board keys as stored: `module`, every `*_pin`, `*_lv`, `ch_num`. */
  config: Record<string, string>;
  /** OpenBeken start-up commands the description implies (drivers, LED maps). */
  commands: string[];
}

/** Module name prefixes and the chip they carry (Tuya's module naming). */
const MODULE_CHIPS: readonly [RegExp, string][] = [
  [/^CB/i, "BK7231N"],
  [/^WB/i, "BK7231T"],
  [/^T1/i, "BK7238"],
  [/^T3/i, "BK7236"],
  [/^T5/i, "BK7258"],
  [/^CBU/i, "BK7231N"],
];

function str(v: TuyaValue | undefined): string | null {
  if (v === undefined || v === null) return null;
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

/** Read the board description from a decoded `user_param_key` object. */
export function describeBoard(upk: Record<string, TuyaValue>): BoardDescription {
  const config: Record<string, string> = {};
  for (const [k, v] of Object.entries(upk)) {
    if (k === "module" || /_pin$/.test(k) || /_lv$/.test(k) || k === "ch_num") {
      const s = str(v);
      if (s !== null) config[k] = s;
    }
  }
  const pins: PinAssignment[] = [];
  for (const [k, v] of Object.entries(upk)) {
    const pin = Number(str(v));
    if (!Number.isInteger(pin) || pin < 0 || pin > 63) continue;
    for (const r of TUYA_PIN_ROLES) {
      const m = r.key.exec(k);
      if (!m) continue;
      const lvKey = k.endsWith("_pin") ? k.replace(/_pin$/, "_lv") : `${k}_lv`;
      const lvText = str(upk[lvKey]);
      const level = lvText === null ? r.defaultLevel : Number(lvText) ? 1 : 0;
      const captured = m[1] && /^\d+$/.test(m[1]) ? Number(m[1]) : undefined;
      pins.push({
        pin,
        key: k,
        function: r.function,
        role: level ? r.high : r.low,
        channel: captured ?? r.channel ?? 0,
      });
      break;
    }
  }
  const commands: string[] = [];
  const scl = str(upk.iicscl), sda = str(upk.iicsda);
  if (scl !== null && sda !== null) {
    const d = I2C_LED_DRIVERS.find((x) => x.keys.some((k) => k in upk));
    if (d) {
      pins.push({ pin: Number(scl), key: "iicscl", function: "LED driver clock", role: d.clk, channel: 0 });
      pins.push({ pin: Number(sda), key: "iicsda", function: "LED driver data", role: d.dat, channel: 0 });
      const map = ["iicr", "iicg", "iicb", "iicc", "iicw"].map((k) => str(upk[k]) ?? "-1");
      if (map.every((x) => /^-?\d+$/.test(x))) commands.push(`LED_Map ${map.join(" ")}`);
    }
  }
  const baud = str(upk.baud);
  if (baud !== null && /^\d+$/.test(baud)) commands.push("startDriver TuyaMCU");
  if (pins.some((p) => p.role.startsWith("BL0937"))) commands.push("startDriver BL0937");
  const pwm = str(upk.pwmhz);
  if (pwm !== null && /^\d+$/.test(pwm)) commands.push(`PWMFrequency ${pwm}`);
  const module = str(upk.module);
  const moduleChip = module ? MODULE_CHIPS.find(([re]) => re.test(module))?.[1] ?? null : null;
  const ch = str(upk.ch_num);
  pins.sort((a, b) => a.pin - b.pin);
  return {
    module,
    moduleChip,
    pins,
    channels: ch !== null && /^\d+$/.test(ch) ? Number(ch) : null,
    uartBaud: baud !== null && /^\d+$/.test(baud) ? Number(baud) : null,
    config,
    commands,
  };
}

/** An OpenBeken device template, in the shape of OpenBeken's device list. */
export interface ObkTemplate {
  /** Device maker: "Tuya". */
  vendor: string;
  /** "0": a generated entry, not a detailed hand-written one. */
  bDetailed: string;
  /** Device name (the one given, else "<module> device"). */
  name: string;
  /** Tuya module name, or "". */
  model: string;
  /** Chip name ("BK7231N"): the one given, else the module's, else "". */
  chip: string;
  /** Tuya module name, or "". */
  board: string;
  /** OpenBeken flags as a decimal string: "0". */
  flags: string;
  /** Search keywords: none. */
  keywords: string[];
  /** Pin roles as `{"<gpio>": "<Role>;<channel>"}`. */
  pins: Record<string, string>;
  /** Start-up commands, CR LF separated ("" when none). */
  command: string;
  /** Photo URL: "". */
  image: string;
  /** Wiki/teardown URL: "". */
  wiki: string;
}

/** The OpenBeken template of a board (pins as `"<gpio>": "<Role>;<channel>"`). */
export function obkTemplate(board: BoardDescription, chip: string | null, name?: string): ObkTemplate {
  const pins: Record<string, string> = {};
  for (const p of board.pins) pins[String(p.pin)] = `${p.role};${p.channel}`;
  return {
    vendor: "Tuya",
    bDetailed: "0",
    name: name ?? `${board.module ?? "unknown module"} device`,
    model: board.module ?? "",
    chip: chip ?? board.moduleChip ?? "",
    board: board.module ?? "",
    flags: "0",
    keywords: [],
    pins,
    command: board.commands.join("\r\n"),
    image: "",
    wiki: "",
  };
}
