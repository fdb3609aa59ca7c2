/**
 * The progress bar on stderr (cli-progress), drawn only when stderr is a terminal. Rates come
 * from the operation's own clock, so an emulated job shows the speed a real wire would give.
 *
 * @module
 */

import process from "node:process";
import cliProgress from "cli-progress";
import type { ProgressEvent, ProgressListener } from "../core/flasher/progress.ts";

/** The part of cli-progress's SingleBar used here (the package ships no types). */
interface Bar {
  start(total: number, value: number, payload?: Record<string, unknown>): void;
  update(value: number, payload?: Record<string, unknown>): void;
  stop(): void;
}

const LABELS: Record<ProgressEvent["op"], string> = {
  read: "Reading ",
  backup: "Backup  ",
  compare: "Comparing",
  erase: "Erasing ",
  write: "Writing ",
  verify: "Verifying",
};

function rate(bytesPerSec: number | undefined): string {
  if (!bytesPerSec) return "";
  return bytesPerSec >= 1024 * 1024
    ? `${(bytesPerSec / 1024 / 1024).toFixed(2)} MiB/s`
    : `${(bytesPerSec / 1024).toFixed(1)} KiB/s`;
}

/** A progress display for one command. */
export interface ProgressView {
  /** Feed flasher progress events here. */
  readonly listener: ProgressListener;
  /** Clear the bar's line before other stderr output. */
  clearLine(): void;
  /** Remove the bar (call when the command ends, also on failure). */
  stop(): void;
}

/** A view that draws nothing. */
export const NO_PROGRESS: ProgressView = { listener: () => {}, clearLine: () => {}, stop: () => {} };

/** Draw progress events as a bar on the process's stderr when `enabled`. */
export function progressView(enabled: boolean): ProgressView {
  if (!enabled) return NO_PROGRESS;
  let bar: Bar | null = null;
  let op: string | null = null;
  const stop = () => {
    bar?.stop();
    bar = null;
    op = null;
  };
  return {
    listener(e: ProgressEvent) {
      if (e.op !== op || !bar) {
        stop();
        op = e.op;
        bar = new cliProgress.SingleBar({
          stream: process.stderr,
          format: "{label} [{bar}] {percentage}% | {kib}/{totalKib} KiB | {rate}",
          barsize: 30,
          hideCursor: true,
          clearOnComplete: false,
          gracefulExit: true,
        }, cliProgress.Presets.shades_classic) as Bar;
        bar.start(e.total, e.done, {
          label: LABELS[e.op],
          kib: 0,
          totalKib: Math.round(e.total / 1024),
          rate: "",
        });
      }
      bar.update(e.done, { kib: Math.round(e.done / 1024), rate: rate(e.bytesPerSec) });
      if (e.done >= e.total) stop();
    },
    clearLine() {
      if (bar) process.stderr.write("\r\x1b[2K");
    },
    stop,
  };
}
