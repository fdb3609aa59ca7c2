/**
 * The catalogue of `deno task mutants`: semantic mutants of the safety logic, each one precise
 * source edit (file, the exact original text, its replacement). The runner refuses to start when
 * an original text is not found exactly once, so a refactoring that moves the code shows up as a
 * failing catalogue instead of a mutant that silently tests nothing.
 *
 * Adding a mutant is one entry: name it for the promise it breaks, say in `what` what a user
 * would lose, and keep the replacement type-correct (the test column type-checks).
 *
 * @module
 */

/** One planted regression. */
export interface Mutant {
  /** Short unique name (`--only <name>`). */
  name: string;
  /** The promise the edit breaks, in one line. */
  what: string;
  /** File relative to the repository root. */
  file: string;
  /** Exact text that must occur once in `file`. */
  original: string;
  /** What replaces it. */
  replacement: string;
}

const PROGRAM = "core/flasher/program.ts";

/** Every mutant, in the order the matrix lists them. */
export const MUTANTS: readonly Mutant[] = [
  {
    name: "bootloader-guard-off",
    what: "writes and erases into 0x0..0x10fff go ahead without --overwrite-bootloader",
    file: "core/flasher/range.ts",
    original: "  if (allow || addr >= end || size <= 0) return;",
    replacement: "  return;",
  },
  {
    name: "key-guard-off",
    what: "a chip with another eFuse key than the chip mode asked for is flashed anyway",
    file: "core/uart/key_guard.ts",
    original: `  if (!profile.key || profile.key.check === "none" || !key) return;`,
    replacement: "  return;",
  },
  {
    name: "key-guard-enforce-as-warn",
    what: "an enforcing key guard (BK7231N) only warns about a chip with another key",
    file: "core/uart/key_guard.ts",
    original: `  if (profile.key.check === "warn") {`,
    replacement: `  if (profile.key.check !== "none") {`,
  },
  {
    name: "backup-never",
    what: "no backup is taken before a write or erase",
    file: PROGRAM,
    original: "  const willBackup = !opts.resume && !opts.noBackup && opts.store !== undefined;",
    replacement: "  const willBackup = false;",
  },
  {
    name: "backup-unchecked",
    what: "the backup's windows are not checked (chip CRC, or a second read on SPI)",
    file: "core/flasher/backup.ts",
    original: `const whole = { addr: 0, size: ctx.flashSize, op: "backup" as const, check: true };`,
    replacement: `const whole = { addr: 0, size: ctx.flashSize, op: "backup" as const, check: false };`,
  },
  {
    // Was `backup-change-unnoticed` (the whole-flash CRC around a backup, backup.ts): since every
    // window's CRC is taken before its read, that check sees nothing the read has not already
    // refused, an equivalent mutant. A plain read has no such second check: this one is live.
    name: "read-change-unnoticed",
    what:
      "a read whose flash changed under it (a read request carried out as an erase) returns the blank as data",
    file: "core/flasher/read.ts",
    original: "  if (suspicious === 0 || !blank || flipped <= 2) return rereads;",
    replacement: "  if (suspicious >= 0) return rereads;",
  },
  {
    name: "read-window-crc-off",
    what: "reads trust the wire: a window's CRC is never compared",
    file: "core/flasher/read.ts",
    original: "      if (!kept) {",
    replacement: "      if (!kept && chipCrc !== chipCrc) {",
  },
  {
    name: "reread-unchecked",
    what: "a sector re-read after a CRC mismatch is taken without checking it",
    file: "core/flasher/read.ts",
    original: "    if (data.length === SECTOR && chip === got) {",
    replacement: "    if (data.length === SECTOR) {",
  },
  {
    name: "compare-crc-always-equal",
    what: "the chip-CRC comparison finds every window equal (nothing is written)",
    file: "core/flasher/compare.ts",
    original: "    return chip !== await content.crc(s.addr, s.len);",
    replacement: "    return chip !== chip;",
  },
  {
    name: "compare-read-always-equal",
    what: "the SPI read-back comparison finds every sector equal",
    file: "core/flasher/compare.ts",
    original: "      if (crc32(got) !== await content.crc(s.addr, s.len)) out.push(s);",
    replacement: "      if (crc32(got) !== crc32(got)) out.push(s);",
  },
  {
    name: "verify-never-fails",
    what: "verify-flash (and the final verify) pass on differing flash",
    file: "core/flasher/verify.ts",
    original: "  if (bad.length) {\n    throw new VerifyMismatchError(",
    replacement: "  if (bad.length < 0) {\n    throw new VerifyMismatchError(",
  },
  {
    name: "final-verify-off",
    what: "a write ends without its final verify",
    file: PROGRAM,
    original:
      "    if (ctx.target.hasChipCrc) await verifyFlash(ctx, content, { addr, window: Number.POSITIVE_INFINITY });",
    replacement: "",
  },
  {
    name: "block-check-off",
    what: "programmed sectors are not checked block by block (nor re-programmed)",
    file: PROGRAM,
    original:
      "      const bad = await differingSpans(ctx, addr, content, spans, { window: BLOCK, attempts: 3, op });",
    replacement: "      const bad: Span[] = [];",
  },
  {
    name: "retry-unbounded",
    what: "a failing sector is re-erased and re-programmed beyond the attempt bound",
    file: "core/flasher/program_sectors.ts",
    original: "    for (let attempt = 2; attempt <= attempts; attempt++) {",
    replacement: "    for (let attempt = 2; attempt <= attempts + 3; attempt++) {",
  },
  {
    name: "block-erase-across-range",
    what: "64 KiB erases are used for blocks the range covers only in part",
    file: "core/flasher/erase_plan.ts",
    original: "    const inside = block >= start && block + BLOCK <= end;",
    replacement: "    const inside = block + BLOCK > start;",
  },
  {
    name: "block-erase-matching-sectors",
    what: "a write erases whole blocks although some of their sectors already match",
    file: "core/flasher/erase_plan.ts",
    original:
      `    const useBlockErase = inside && (policy === "covered" || sectors.length === BLOCK / SECTOR);`,
    replacement: "    const useBlockErase = inside;",
  },
  {
    name: "rest-of-chip-unchecked-without-backup",
    what: "with --no-backup, a change outside the job's range goes unreported",
    file: "core/flasher/integrity.ts",
    original: "    if (now !== before.crcs[i]) changed.push(s);",
    replacement: "    if (now !== now) changed.push(s);",
  },
  {
    name: "rest-of-chip-never-restored",
    what: "sectors outside the job that differ from the backup are neither written back nor named",
    file: "core/flasher/integrity.ts",
    original: "  let left = await outsideDiffering(ctx, check);",
    replacement: "  let left: Span[] = [];",
  },
  {
    name: "rest-of-chip-unchecked-after-job",
    what: "a job with a backup does not compare the rest of the chip with it",
    file: PROGRAM,
    original: "        : await restoreOutside(ctx, {",
    replacement: "        : !opts.resume ? [] : await restoreOutside(ctx, {",
  },
  {
    name: "rest-of-chip-unchecked-after-resume",
    what: "a resumed job does not compare the rest of the chip with the backup",
    file: PROGRAM,
    original: "        : await restoreOutside(ctx, {",
    replacement: "        : opts.resume ? [] : await restoreOutside(ctx, {",
  },
  {
    name: "journal-never-started",
    what: "a new job keeps no journal, so an interrupted job cannot be resumed",
    file: PROGRAM,
    original:
      "  const journal = await startJournal(ctx, opts, plan, expectedCrc, changed, backup, base, fingerprint);",
    replacement:
      "  const journal = opts.resume ? await startJournal(ctx, opts, plan, expectedCrc, changed, backup, base, fingerprint) : null;",
  },
  {
    name: "journal-done-too-early",
    what: "the journal marks every planned sector done after the first block",
    file: PROGRAM,
    original: "      await journal?.markDone(w.sectors).catch((e) => noteJournal(e));",
    replacement: "      await journal?.markDone(changed).catch((e) => noteJournal(e));",
  },
  {
    name: "journal-failure-unrecorded",
    what: "a failed job's journal still says in-progress",
    file: "core/flasher/program_failure.ts",
    original: `  await journal?.finish("failed", out.message, own).catch((err) => noteJournal(err));`,
    replacement: "",
  },
  {
    name: "damage-drops-cause-start",
    what: "a failure's damage range forgets where the cause (a corrupted request) changed flash",
    file: "core/flasher/program_failure.ts",
    original: "    start: Math.min(from, own?.start ?? from),",
    replacement: "    start: from,",
  },
  {
    name: "damage-drops-cause-end",
    what: "a failure's damage range ends before the flash its cause changed",
    file: "core/flasher/program_failure.ts",
    original:
      "    end: Math.min(Math.max(lastChangedEnd, from + SECTOR, own?.end ?? 0), Math.max(ctx.flashSize, end)),",
    replacement: "    end: Math.min(Math.max(lastChangedEnd, from + SECTOR), Math.max(ctx.flashSize, end)),",
  },
  {
    name: "unprotect-uart-never-writes",
    what: "the UART path never clears block protection (and reports FLASH_LOCKED instead)",
    file: "core/uart/target.ts",
    original:
      "    for (let attempt = 0; attempt < UNPROTECT_TRIES && needsUnprotect(part, srWordOf(now)); attempt++) {",
    replacement: "    for (let attempt = 0; attempt < 0 && needsUnprotect(part, srWordOf(now)); attempt++) {",
  },
  {
    name: "unprotect-uart-writes-always",
    what: "the UART path writes the status register even when nothing is protected",
    file: "core/uart/target.ts",
    original:
      "    for (let attempt = 0; attempt < UNPROTECT_TRIES && needsUnprotect(part, srWordOf(now)); attempt++) {",
    replacement:
      "    for (let attempt = 0; attempt < UNPROTECT_TRIES && (attempt === 0 || needsUnprotect(part, srWordOf(now))); attempt++) {",
  },
  {
    name: "unprotect-spi-never-writes",
    what: "the SPI path never clears block protection",
    file: "core/spi/nor.ts",
    original: "    if (!needsUnprotect(part, sr)) return { before, after: before, wrote: false };",
    replacement: "    return { before, after: before, wrote: false };",
  },
  {
    name: "unprotect-spi-wp-assumed-low",
    what: "SRP0 is taken for a lock although WP# is high (FLASH_LOCKED on a writable chip)",
    file: "core/spi/nor.ts",
    original: "    const lock = diagnoseLock(part, sr);",
    replacement: `    const lock = diagnoseLock(part, sr, "low");`,
  },
  {
    name: "wrap-probe-skips-512k",
    what: "the address-wrap probe never tries 512 KiB, so a small flash is taken for twice its size",
    file: "core/uart/identify.ts",
    original: "  for (let size = 0x80000; size <= 0x1000000; size *= 2) {",
    replacement: "  for (let size = 0x100000; size <= 0x1000000; size *= 2) {",
  },
  {
    name: "spi-entry-one-attempt",
    what: "SPI-mode entry gives up after the first refusal",
    file: "core/spi/entry.ts",
    original: "  for (let attempt = 1; attempt <= p.attempts; attempt++) {",
    replacement: "  for (let attempt = 1; attempt <= 1; attempt++) {",
  },
  {
    name: "read-ahead-off-silently",
    what: "read-ahead turns itself off after a lost reply without telling the user",
    file: "core/flasher/read_ahead.ts",
    original: `  if (typeof ctx.target.readSectors !== "function") return;`,
    replacement: `  if (typeof ctx.target.readSectors === "function") return;`,
  },
  {
    name: "ledger-off",
    what: "a reply reporting a flash change the host never asked for is ignored as stale",
    file: "core/uart/client.ts",
    original:
      "        const unrequested = fillerWrite ? null : this.#ledger.check(frame, this.flashSize ?? undefined);",
    replacement: "        const unrequested = null as FlashError | null;",
  },
  {
    name: "resume-fingerprint-unchecked",
    what:
      "a resume does not compare the chip with the journal's fingerprint (another chip or newer data is written over)",
    file: "core/flasher/resume_guard.ts",
    original: "    if (chip === want) continue;",
    replacement: "    continue;",
  },
  {
    // Not the sidecar check alone: the journal's copy of the backup's CRC and the fingerprint's
    // window CRCs check the same bytes, so removing any one of the three is an equivalent mutant
    // (no run can tell); what a user loses is all three gone.
    name: "resume-backup-unchecked",
    what:
      "a resume uses the interrupted job's backup without checking it against its sidecar, its journal or the chip's fingerprint",
    file: "core/flasher/resume_guard.ts",
    original: "  const got = crcHex(whole);",
    replacement: "  const got = crcHex(whole);\n  if (got === got) return { sectorCrcs };",
  },
  {
    name: "write-back-unsaved",
    what: "sectors outside the job are written back from the backup without saving what they held first",
    file: "core/flasher/integrity.ts",
    original: "  const saved = await saveSectors(ctx, check.store, sectors, check.save, reason);",
    replacement: '  const saved = "(not saved)";',
  },
  {
    name: "backup-dir-lock-not-taken",
    what: "two sessions may write the same backup directory (and its journals) at once",
    file: PROGRAM,
    original: "  const held = opts.store?.lock ? await opts.store.lock() : null;",
    replacement: "  const held = null as { release(): void } | null;",
  },
  {
    name: "key-guard-m-mode-on-tuya-key",
    what: "a chip carrying the Tuya key is flashed in BK7231M mode (the guard refused only the other way)",
    file: "core/uart/key_guard.ts",
    original: `  if (keyChip && keyChip.id !== profile.id && profile.key.check === "warn") {`,
    replacement: `  if (keyChip && keyChip.id === "" && profile.key.check === "warn") {`,
  },
  {
    name: "sparse-erased-unconfirmed",
    what:
      "a unit whose one CheckCRC reply said 0xFF is taken as erased without the confirming CRCs (a read returns 0xFF for data)",
    file: "core/flasher/erased.ts",
    original: "      u.erased = checks.every((c) => c.ok || c.addr >= end || c.addr + c.len <= u.addr);",
    replacement: "      u.erased = true;",
  },
  {
    name: "tu-filler-recovery-off",
    what:
      "after a truncated request a T/U loader eats the retry and the fence (no filler completes the eaten frame)",
    file: "core/uart/client.ts",
    original: "    if (!spec || !f || f.frameTimeoutMs !== null) return;",
    replacement: "    return;",
  },
  {
    name: "silent-forbidden-range-sent",
    what: "requests into a range a BK7236-class loader ignores are sent (and time out) instead of refused",
    file: "core/uart/target.ts",
    original: "    if (silent) {",
    replacement: "    if (silent && silent.start < 0) {",
  },
  {
    name: "baud-quantisation-unchecked",
    what: "a --baud the chip's UART divisor cannot make closely enough is used instead of refused",
    file: "core/uart/baud.ts",
    original: "  if (!baudWorks(baud, clockHz)) {",
    replacement: "  if (!baudWorks(baud, clockHz) && baud < 0) {",
  },
  {
    name: "in-flux-ignores-stop-record",
    what:
      "the resume guard takes the block in flux from the done list only, not from where the failed job stopped",
    file: "core/flasher/journal.ts",
    original: "  const first = journal.stoppedAt !== undefined",
    replacement: "  const first = journal.stoppedAt !== undefined && journal.stoppedAt === -1",
  },
  {
    name: "misdirected-program-subset-only",
    what:
      "the resume guard explains a sector by any image sector it is a subset of (a nearly blank one explains almost anything)",
    file: "core/flasher/resume_guard.ts",
    original:
      "      if (!programmedOver(now, x)) return;\n      for (let k = 0; k < SECTOR; k++) left[k] &= x[k];",
    replacement: "      if (programmedOver(now, x)) left.set(now);",
  },
];
