/**
 * What every flasher operation runs with: the target, the injected clock, the flash size,
 * and where progress and notable events go. The CLI builds one per command; tests build one
 * around a fake target.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { FlashError } from "../errors.ts";
import type { TimingModel } from "../timing.ts";
import type { ProgressListener } from "./progress.ts";
import type { FlashTarget, UnprotectReport } from "../target.ts";

/** Something worth telling the user while an operation runs (the CLI prints these on stderr). */
export type FlasherEvent =
  | {
    type: "retry";
    /** Operation that retried ("read", "write", …). */
    op: string;
    /** Sector (or window) address concerned. */
    addr: number;
    /** Attempt about to be made, counting from 2. */
    attempt: number;
    /** Attempts allowed in total. */
    of: number;
    reason: string;
  }
  | { type: "unprotect"; report: UnprotectReport }
  | {
    type: "backup";
    location: string;
    size: number;
    crc32: number;
    /** An earlier backup the chip still matches (by its whole-flash CRC) was used instead of a read. */
    reused?: boolean;
  }
  | { type: "plan"; op: string; changed: number; unchanged: number; blocks: number; sectors: number }
  | { type: "note"; message: string }
  /** Something the user should see even without -v (a fallback, a reused backup). */
  | { type: "notice"; message: string };

/** The environment of one flasher operation. */
export interface FlasherContext {
  /** The chip, over whichever path. */
  target: FlashTarget;
  /** Time source for rates and accounting: the link's clock (virtual on emulated targets). */
  clock: Clock;
  /** Flash size in bytes, as the target reported it. */
  flashSize: number;
  /** Host baud rate, for the wire-floor figure of the accounting; null where there is no UART. */
  baud?: number | null;
  /** Called as sectors are done. */
  onProgress?: ProgressListener;
  /** Called for retries, notices and other events worth telling the user. */
  onEvent?: (event: FlasherEvent) => void;
  /** Aborts the operation between sectors. */
  signal?: AbortSignal;
  /**
   * Use the target's read-ahead (`readSectors`) for runs of reads (default true). The flasher
   * turns it off by itself when a read-ahead reply goes missing or the link shows errors.
   */
  readAhead?: boolean;
  /**
   * The timing model that prices plans (the erased-region map reads its chip CRC speed and
   * latencies from it); default the built-in one.
   */
  timing?: Pick<TimingModel, "crcBytesPerSec" | "usbTurnaroundMs" | "loaderReplyMs">;
  /**
   * Map erased regions by chip CRC and skip reading them (default true where the chip has a
   * CRC), and leave sectors a write's backup shows blank unerased; false reads every byte and
   * erases every sector a write changes.
   */
  sparse?: boolean;
}

/** Build a context, asking the target for its flash size. */
export async function createContext(
  target: FlashTarget,
  clock: Clock,
  extra: Omit<FlasherContext, "target" | "clock" | "flashSize"> = {},
): Promise<FlasherContext> {
  const info = await target.info();
  return { target, clock, flashSize: info.flashSize, ...extra };
}

/** Throw a CANCELLED error when the context's signal has fired. */
export function checkCancelled(ctx: FlasherContext): void {
  if (ctx.signal?.aborted) {
    throw new FlashError(
      "CANCELLED",
      "operation cancelled",
      "run the command again when ready; a write resumes by skipping sectors that already match",
    );
  }
}
