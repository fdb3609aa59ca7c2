/**
 * Reading a run of sectors as fast as the path allows: through the target's `readSectors`
 * (read-ahead on the boot UART, batched transactions on SPI) while the context allows it, one
 * request at a time otherwise. A transient failure of a read-ahead run turns read-ahead off for
 * the rest of the context, says so once, and the run continues one request at a time with the
 * usual bounded retries.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { checkCancelled, type FlasherContext } from "./context.ts";
import { hex } from "./range.ts";
import { isTransient, reasonOf, withRetries } from "./retry.ts";
import { SECTOR } from "../target.ts";

/** Whether the next run may use the target's read-ahead. */
export function readAheadAllowed(ctx: FlasherContext): boolean {
  return ctx.readAhead !== false && typeof ctx.target.readSectors === "function";
}

/** Turn read-ahead off for the rest of the context and tell the user (once). */
export function stopReadAhead(ctx: FlasherContext, reason: string): void {
  if (ctx.readAhead === false) return;
  ctx.readAhead = false;
  if (typeof ctx.target.readSectors !== "function") return;
  ctx.onEvent?.({
    type: "notice",
    message: `read-ahead off (${reason}); continuing one request at a time`,
  });
}

function checkLength(addr: number, data: Uint8Array): void {
  if (data.length !== SECTOR) {
    throw new FlashError(
      "BAD_REPLY",
      `read of sector ${hex(addr)} returned ${data.length} bytes instead of ${SECTOR}`,
      "retry at a lower --baud; if it persists, report the port type and chip",
    );
  }
}

/**
 * Read the sectors `addrs` in order; `onSector` gets each one exactly once, in order.
 *
 * @example
 * ```ts
 * import type { FlasherContext } from "./context.ts";
 * declare const ctx: FlasherContext;
 * declare function save(addr: number, data: Uint8Array): void;
 * await readSectorRun(ctx, [0x11000, 0x12000], { op: "read", attempts: 5 }, (a, d) => save(a, d));
 * ```
 */
export async function readSectorRun(
  ctx: FlasherContext,
  addrs: readonly number[],
  opts: { op: string; attempts: number },
  onSector: (addr: number, data: Uint8Array) => void | Promise<void>,
): Promise<void> {
  let done = 0;
  if (addrs.length > 1 && readAheadAllowed(ctx)) {
    try {
      await ctx.target.readSectors!(addrs, async (addr, data) => {
        checkCancelled(ctx);
        checkLength(addr, data);
        await onSector(addr, data);
        done++;
      });
    } catch (e) {
      if (!isTransient(e)) throw e;
      const at = addrs[Math.min(done, addrs.length - 1)];
      stopReadAhead(ctx, `a read-ahead reply went missing at ${hex(at)}: ${reasonOf(e)}`);
      // the sector is asked for again, one request at a time: a retry like any other, so that
      // whoever counts unanswered requests sees this one (a read request carried out as an erase
      // loses its reply, and the read must then distrust a sector that reads blank)
      ctx.onEvent?.({
        type: "retry",
        op: opts.op,
        addr: at,
        attempt: 2,
        of: opts.attempts,
        reason: reasonOf(e),
      });
    }
  }
  for (; done < addrs.length; done++) {
    checkCancelled(ctx);
    const addr = addrs[done];
    const data = await withRetries(ctx, opts.op, addr, opts.attempts, async () => {
      const d = await ctx.target.readSector(addr);
      checkLength(addr, d);
      return d;
    });
    await onSector(addr, data);
  }
}
