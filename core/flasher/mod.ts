/**
 * The operations users run, identical over every {@link FlashTarget}: read, write, verify,
 * erase, backup, with progress, retries, guards, journal and accounting.
 *
 * @module
 */

export * from "../target.ts";
export * from "./context.ts";
export * from "./progress.ts";
export * from "./accounting.ts";
export * from "./range.ts";
export * from "./retry.ts";
export * from "./source.ts";
export * from "./compare.ts";
export * from "./read_ahead.ts";
export * from "./read.ts";
export * from "./verify.ts";
export * from "./store.ts";
export * from "./sidecar.ts";
export * from "./backup_name.ts";
export * from "./backup_entry.ts";
export * from "./backup.ts";
export * from "./backup_reuse.ts";
export * from "./after_image.ts";
export * from "./journal.ts";
export * from "./program.ts";
export * from "./write.ts";
export * from "./erase.ts";
export * from "./integrity.ts";
export * from "./erased.ts";
export * from "./sparse_read.ts";
