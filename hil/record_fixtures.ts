/**
 * `deno task traces`: regenerate the shipped traces in fixtures/traces/ by recording HIL runs
 * on the emulator: the non-destructive scenarios over UART for every chip profile, and over
 * SPI through the virtual CH341A for one. `deno test` replays every trace in that folder
 * (tests/trace_replay_test.ts), so a core change that alters a single byte on the wire
 * shows up as a diff. Deterministic: same code, same files.
 *
 * @module
 */

import { CHIPS } from "../core/chips/profiles.ts";
import { MemoryTraceSink } from "../core/io/trace.ts";
import { openBench } from "./open.ts";
import { runHil } from "./runner.ts";

/** Where the traces go. */
export const TRACE_DIR = new URL("../fixtures/traces/", import.meta.url);

/**
 * Scenarios recorded: the ones that need no full backup, so the files stay small. The baud
 * ladder (seven connects) is recorded for one BootROM and one basic-loader chip.
 */
export const RECORDED = {
  uart: ["detect", "read-key", "key-guard", "bootloader-guard", "power-cycle"],
  ladder: ["bk7231n", "bk7231t"],
  spi: ["detect"],
};

/** The header time of every fixture, fixed so that regenerating gives identical files. */
const FIXED_TIME = new Date(0).toISOString();

/** One fixture: target and file name. */
export interface FixturePlan {
  target: string;
  file: string;
  only: string[];
}

/** Every fixture this script writes. */
export function fixturePlans(): FixturePlan[] {
  return [
    ...CHIPS.map((c) => ({
      target: `virtual:${c.id}`,
      file: `${c.id}-uart.jsonl`,
      only: RECORDED.ladder.includes(c.id) ? [...RECORDED.uart, "baud-ladder"] : RECORDED.uart,
    })),
    { target: "ch341a:virtual:bk7231n", file: "bk7231n-spi.jsonl", only: RECORDED.spi },
  ];
}

/** Record one plan; returns the JSONL text, or throws when a scenario failed. */
export async function recordFixture(plan: FixturePlan): Promise<string> {
  const sink = new MemoryTraceSink();
  const opened = await openBench({
    target: plan.target,
    baud: 921600,
    linkTimeoutMs: 20_000,
    only: plan.only,
    record: sink,
    createdAt: FIXED_TIME,
  });
  const report = await runHil(opened.bench, { profile: opened.profile, only: plan.only });
  await opened.writer?.close();
  await opened.close();
  const bad = report.scenarios.filter((s) => s.status === "failed");
  if (bad.length || report.error) {
    throw new Error(
      `${plan.target}: ${bad.map((s) => `${s.id}: ${s.reason}`).join("; ") || report.error?.message}`,
    );
  }
  return sink.text();
}

if (import.meta.main) {
  await Deno.mkdir(TRACE_DIR, { recursive: true });
  for (const plan of fixturePlans()) {
    const text = await recordFixture(plan);
    await Deno.writeTextFile(new URL(plan.file, TRACE_DIR), text);
    console.log(`${plan.file}: ${text.split("\n").length - 1} lines, ${(text.length / 1024).toFixed(0)} KiB`);
  }
}
