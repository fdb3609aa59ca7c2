/**
 * `deno task flash obk-config`: write OpenBeken's configuration sector so the device joins the
 * network on first boot: Wi-Fi, MQTT, names, pins (from an OpenBeken template, or straight from
 * the Tuya configuration in a backup), start-up commands. An existing valid configuration on
 * the chip is kept except for what is set. Backup first, verified.
 *
 * @module
 */

import { FlashError } from "../core/errors.ts";
import { hex } from "../core/flasher/range.ts";
import { readFlash } from "../core/flasher/read.ts";
import { writeFlash } from "../core/flasher/write.ts";
import { inspectDump } from "../core/image/inspect.ts";
import { decodeObkConfig, encodeObkConfig, type ObkSettings } from "../core/image/obk_config.ts";
import { obkTemplate } from "../core/image/tuya_config.ts";
import { type CommandEnv, contextFor, jobOptions } from "./command_env.ts";
import { readImage } from "../core/flasher/files.ts";
import type { Session } from "./session.ts";

/** Options of `obk-config`. */
export interface ObkConfigOptions {
  /** `key=value` pairs. */
  set: string[];
  /** An OpenBeken template file (its `pins` and `command`). */
  pins?: string;
  /** A backup whose Tuya configuration gives the pins. */
  fromDump?: string;
  name?: string;
  /** A JSON file of settings (`{"wifi": {"ssid": …}}` or `{"wifi.ssid": …}`). */
  config?: string;
  /** Random bytes for the default names (tests pin them). */
  random?: (n: number) => Uint8Array;
}

const usage = (cause: string) =>
  new FlashError(
    "USAGE",
    cause,
    "see `deno task flash obk-config --help`; settings are --set wifi.ssid=… etc.",
  );

function flatten(
  o: Record<string, unknown>,
  prefix = "",
  out: Record<string, string> = {},
): Record<string, string> {
  for (const [k, v] of Object.entries(o)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      flatten(v as Record<string, unknown>, key, out);
    } else out[key] = String(v);
  }
  return out;
}

/** Collect the settings from the options (files read here). */
export async function settingsOf(o: ObkConfigOptions): Promise<ObkSettings> {
  const set: Record<string, string> = {};
  if (o.config) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(await readImage(o.config)));
    } catch (e) {
      if (e instanceof FlashError) throw e;
      throw usage(`${o.config} is not JSON: ${(e as Error).message}`);
    }
    Object.assign(set, flatten(parsed as Record<string, unknown>));
  }
  for (const kv of o.set) {
    const i = kv.indexOf("=");
    if (i <= 0) throw usage(`--set ${kv}: expected key=value`);
    set[kv.slice(0, i)] = kv.slice(i + 1);
  }
  if (o.name) {
    set["name.long"] = o.name;
    set["name.short"] = o.name.toLowerCase().replace(/[^a-z0-9_-]+/g, "_").slice(0, 31);
  }
  if (o.pins && o.fromDump) throw usage("--pins and --from-dump both give the pins: pass one");
  let pins: Record<string, string> | undefined;
  let commands: string[] | undefined;
  if (o.pins) {
    let t: { pins?: Record<string, string>; command?: string };
    try {
      t = JSON.parse(new TextDecoder().decode(await readImage(o.pins)));
    } catch (e) {
      if (e instanceof FlashError) throw e;
      throw usage(`${o.pins} is not JSON: ${(e as Error).message}`);
    }
    if (!t.pins || typeof t.pins !== "object") {
      throw usage(`${o.pins} has no "pins" object (an OpenBeken template)`);
    }
    pins = t.pins;
    commands = t.command ? t.command.split(/\r?\n/).filter((c) => c.trim() !== "") : undefined;
  }
  if (o.fromDump) {
    const r = inspectDump(await readImage(o.fromDump));
    const board = r.tuya?.board;
    if (!board || board.pins.length === 0) {
      throw new FlashError(
        "BAD_IMAGE",
        `${o.fromDump} has no Tuya pin configuration`,
        "pass --pins <OpenBeken template> instead, or inspect the backup to see what it holds",
      );
    }
    const t = obkTemplate(board, r.chip.family);
    pins = t.pins;
    commands = board.commands;
  }
  return { set, pins, commands };
}

/** `obk-config`. */
export async function obkConfigCommand(s: Session, env: CommandEnv, o: ObkConfigOptions): Promise<void> {
  const profile = s.uart?.identity.profile;
  if (!profile) {
    throw new FlashError(
      "UNSUPPORTED",
      "obk-config needs the chip's OpenBeken config address, which only the boot-UART path identifies",
      "run it over the chip's UART (--port /dev/ttyUSB0 or virtual:<chip>)",
    );
  }
  const settings = await settingsOf(o);
  if (Object.keys(settings.set).length === 0 && !settings.pins) {
    throw usage("nothing to set: pass --set key=value, --pins, --from-dump, --name or --config");
  }
  const addr = profile.layout.config.start;
  const ctx = await contextFor(s, env);
  const current = (await readFlash(ctx, { addr, size: 0x1000 })).data;
  const had = decodeObkConfig(current);
  const random = o.random ?? ((n: number) => crypto.getRandomValues(new Uint8Array(n)));
  const suffix = Array.from(random(3), (b) => b.toString(16).padStart(2, "0").toUpperCase()).join("");
  let sector: Uint8Array;
  try {
    sector = encodeObkConfig(settings, { base: had?.crcValid ? current : undefined, suffix });
  } catch (e) {
    throw usage((e as Error).message);
  }
  const check = decodeObkConfig(sector)!;
  env.out.note(
    had?.crcValid
      ? `OpenBeken config v${had.version} found at ${hex(addr)}: keeping what is not set`
      : `no valid OpenBeken config at ${hex(addr)}: starting from OpenBeken's defaults`,
  );
  const r = await writeFlash(ctx, sector, {
    addr,
    overwriteBootloader: false,
    ...jobOptions(s, env),
  });
  env.progress.stop();
  const masked = (k: string, v: string) => (/pass/.test(k) && v ? `<masked: ${v.length} chars>` : v);
  const shown = Object.fromEntries(
    Object.keys(settings.set).map((k) => [k, masked(k, check.text[k] ?? settings.set[k])]),
  );
  env.out.result(
    {
      addr,
      version: check.version,
      crcValid: check.crcValid,
      set: shown,
      pins: check.pins,
      verified: true,
      backup: r.backup,
      changed: r.changed,
    },
    [
      `Wrote the OpenBeken config (v${check.version}, CRC8 ok) at ${hex(addr)}; verified`,
      ...Object.entries(shown).map(([k, v]) => `  ${k}: ${v}`),
      ...(check.pins.length
        ? [`  pins: ${check.pins.map((p) => `P${p.pin}=${p.role};${p.channel}`).join(" ")}`]
        : []),
      ...(r.backup ? [`Backup: ${r.backup}`] : []),
    ],
  );
}
