/**
 * Bounded retries of single target calls. Only failures a second attempt can cure (a lost or
 * garbled reply, a busy flash) are retried; anything else (a vanished port, a refused
 * address) propagates at once.
 *
 * @module
 */

import { ChipStatusError, type ErrorCode, FlashError } from "../errors.ts";
import { checkCancelled, type FlasherContext, type FlasherEvent } from "./context.ts";

/** Reason of a read's retry when a sector's bytes do not match the chip's CRC: its request was answered. */
export const CRC_MISMATCH_RETRY = "sector CRC mismatch";

/**
 * Whether `e` is a retry of a request that went unanswered or was answered by something else on
 * the way (any retry but a read's CRC mismatch): a request corrupted into an erase loses its reply.
 */
export function isUnansweredRetry(e: FlasherEvent): boolean {
  return e.type === "retry" && e.reason !== CRC_MISMATCH_RETRY;
}

const TRANSIENT: ReadonlySet<ErrorCode> = new Set<ErrorCode>(["TIMEOUT", "BAD_REPLY", "CRC_MISMATCH"]);

/** Whether another attempt of the same call may succeed. */
export function isTransient(error: unknown): boolean {
  if (error instanceof ChipStatusError) return error.status >= 1 && error.status <= 3;
  return error instanceof FlashError && TRANSIENT.has(error.code);
}

/** Short description of an error for retry events. */
export function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Run `fn` up to `attempts` times while it fails transiently, reporting each retry.
 *
 * @example
 * ```ts
 * import type { FlasherContext } from "./context.ts";
 * declare const ctx: FlasherContext;
 * const data = await withRetries(ctx, "read", 0x11000, 5, () => ctx.target.readSector(0x11000));
 * ```
 */
export async function withRetries<T>(
  ctx: FlasherContext,
  op: string,
  addr: number,
  attempts: number,
  fn: () => Promise<T>,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    checkCancelled(ctx);
    try {
      return await fn();
    } catch (e) {
      if (attempt >= attempts || !isTransient(e)) throw e;
      ctx.onEvent?.({ type: "retry", op, addr, attempt: attempt + 1, of: attempts, reason: reasonOf(e) });
    }
  }
}
