/**
 * The CLI's commands, each a function over an open {@link Session}: they run the flasher
 * operations and turn their reports into one result (JSON object or human lines). What they
 * share (the environment, job options, context, result printer) is in `command_env.ts`.
 *
 * @module
 */

import { findResumePoint } from "./resume.ts";
import { checkImageKey } from "../core/image/key_check.ts";
import { compareBootloaders, planWholeFlash } from "./qio.ts";
import { isSampleImage } from "../core/image/samples.ts";
import { formatKey } from "../core/chips/profiles.ts";
import { FlashError } from "../core/errors.ts";
import { crcHex } from "../core/flasher/sidecar.ts";
import { eraseRegion } from "../core/flasher/erase.ts";
import type { ProgramReport } from "../core/flasher/program.ts";
import { hex, humanSize } from "../core/flasher/range.ts";
import { readFlashTo } from "../core/flasher/read.ts";
import { readSparseTo, sparseAllowed } from "../core/flasher/sparse_read.ts";
import { type ByteSource, scanSource, toSource } from "../core/flasher/source.ts";
import { verifyFlash } from "../core/flasher/verify.ts";
import { writeFlash } from "../core/flasher/write.ts";
import type { CommandCost } from "./accounting.ts";
import { openOutput, type OutputFile } from "../core/flasher/files.ts";
import type { Session } from "./session.ts";
import { bootloaderAllowed, type CommandEnv, contextFor, finish, jobOptions } from "./command_env.ts";

/** `chip-info`. */
export async function chipInfo(s: Session, env: CommandEnv): Promise<void> {
  const info = await s.target.info();
  const id = s.uart?.identity;
  const fields = {
    port: s.port,
    chip: s.identity.chip,
    mode: id?.profile.id ?? s.spi?.mode ?? null,
    personality: id?.personality ?? null,
    bootloader: id?.bootloader ?? null,
    bootloaderCrc: id ? crcHex(id.bootloaderCrc) : null,
    chipId: id?.chipId == null ? null : hex(id.chipId),
    flashId: s.identity.flashId,
    flashSize: info.flashSize,
    key: s.identity.key,
    statusRegisters: info.statusRegisters,
    warnings: id?.warnings ?? [],
    baud: s.baud,
    spiEntryAttempts: s.spi?.entry?.attempt ?? null,
  };
  const human = [
    `Chip:        ${fields.chip}${fields.personality ? ` (${fields.personality} loader)` : ""}`,
    `Bootloader:  ${fields.bootloader ?? "unknown"}${
      fields.bootloaderCrc ? ` (CRC ${fields.bootloaderCrc})` : ""
    }`,
    `Chip ID:     ${fields.chipId ?? "n/a"}`,
    `Flash ID:    ${fields.flashId ?? "n/a"}`,
    `Flash size:  ${humanSize(info.flashSize)} (${hex(info.flashSize)})`,
    `Key:         ${fields.key ?? "n/a"}`,
    `Status regs: ${info.statusRegisters ? info.statusRegisters.map((b) => hex(b)).join(" ") : "n/a"}`,
    ...fields.warnings.map((w) => `Warning:     ${w}`),
  ];
  finish(s, env, fields, human);
}

/** `read-flash`: streamed into the output file window by window. */
export async function readFlashCommand(
  s: Session,
  env: CommandEnv,
  args: { addr: number; size?: number; out: string; sink?: OutputFile },
): Promise<void> {
  const ctx = await contextFor(s, env);
  const size = args.size ?? ctx.flashSize - args.addr;
  const out = args.sink ?? await openOutput(args.out);
  let r;
  try {
    const read = sparseAllowed(ctx) ? readSparseTo : readFlashTo;
    r = await read(ctx, { addr: args.addr, size }, (chunk) => out.write(chunk));
    await out.commit();
  } catch (e) {
    await out.abort().catch(() => {});
    throw e;
  }
  finish(
    s,
    env,
    { addr: args.addr, size, out: args.out, crc32: crcHex(r.crc32), chip: s.identity.chip },
    [
      `Read ${humanSize(size)} at ${hex(args.addr)} from ${s.identity.chip} into ${args.out} (CRC-32 ${
        crcHex(r.crc32)
      })`,
    ],
    { operation: r.accounting },
  );
}

function programJson(r: ProgramReport): Record<string, unknown> {
  return {
    changed: r.changed,
    unchanged: r.unchanged,
    blockErases: r.blockErases,
    sectorErases: r.sectorErases,
    sectorWrites: r.sectorWrites,
    retries: r.retries,
    backup: r.backup,
    backupReused: r.backupRecord?.reused ?? false,
    afterImage: r.afterImage,
    journal: r.journal,
    restoredOutside: r.restoredOutside.map((a) => hex(a)),
    unprotected: r.unprotect?.wrote ?? false,
    verified: true,
  };
}

function programCost(r: ProgramReport): CommandCost {
  return {
    operation: r.accounting,
    backup: r.backupRecord ? { ...r.backupRecord.accounting, reused: r.backupRecord.reused } : null,
  };
}

function programHuman(r: ProgramReport, verb: string): string[] {
  const lines = [
    r.changed === 0
      ? `Nothing to ${verb}: ${hex(r.addr)}..${hex(r.addr + r.size - 1)} already matches`
      : `${verb === "write" ? "Wrote" : "Erased"} ${r.changed} sector(s) (${r.unchanged} already matched): ` +
        `${r.blockErases} 64 KiB + ${r.sectorErases} 4 KiB erases, ${r.sectorWrites} sector writes, ${r.retries} retries; verified`,
  ];
  if (r.restoredOutside.length) {
    lines.push(
      `Wrote back ${r.restoredOutside.length} sector(s) outside the ${verb} from the backup (saved first)`,
    );
  }
  if (r.backup) {
    lines.push(`Backup: ${r.backup}${r.backupRecord?.reused ? " (reused: the chip still matched it)" : ""}`);
  }
  return lines;
}

/** `write-flash`: the image is read from its file piece by piece. */
export async function writeFlashCommand(
  s: Session,
  env: CommandEnv,
  args: {
    image: string;
    data: Uint8Array | ByteSource;
    addr: number;
    resume?: string | boolean;
    restoreOutside?: boolean;
  },
): Promise<void> {
  if (!/virtual:/.test(s.port)) {
    const all = args.data instanceof Uint8Array ? args.data : await args.data.read(0, args.data.size);
    if (isSampleImage(all)) {
      throw new FlashError(
        "BAD_IMAGE",
        `${args.image} is one of bekenlab's emulator-only sample images, not firmware`,
        "write a real build (OpenBeken, LibreTiny) to a real chip; samples are for --port virtual:<chip>",
      );
    }
  }
  const plan = await planWholeFlash(env.out, args.data, args.addr, {
    uart: s.kind === "uart",
    overwriteBootloader: env.overwriteBootloader,
    chipKey: s.identity.key,
  });
  args = { ...args, addr: plan.addr };
  const image = plan.data;
  const size = image instanceof Uint8Array ? image.length : image.size;
  const point = args.resume
    ? await findResumePoint(
      env.backupDir,
      args.addr,
      image,
      typeof args.resume === "string" ? args.resume : undefined,
    )
    : null;
  if (args.resume) {
    env.out.note(
      point
        ? `resuming the write started ${point.journal.createdAt} (journal ${point.path}, backup ${
          point.journal.backup ?? "none"
        })`
        : `no unfinished write of ${args.image} at ${
          hex(args.addr)
        } in ${env.backupDir}: writing it from the start`,
    );
  }
  const overwriteBootloader = await bootloaderAllowed(s, env, "write", args.addr, size);
  // a write the bootloader guard refuses anyway is not key-checked (one error, no note)
  if (overwriteBootloader || args.addr >= s.bootloaderEnd) {
    const head = image instanceof Uint8Array ? image : await image.read(0, Math.min(size, 0x12000));
    const keyCheck = checkImageKey(head, args.addr, s.identity.key, env.skipKeyCheck ?? false);
    if (keyCheck) env.out.note(keyCheck.note);
  }
  const ctx = await contextFor(s, env);
  await compareBootloaders(ctx, env.out, plan);
  const r = await writeFlash(ctx, image, {
    resume: point ? { journal: point.journal, name: point.name } : undefined,
    restoreOutside: args.restoreOutside ?? false,
    addr: args.addr,
    // over SPI, --yes also confirms a resume's write-back into the bootloader window
    overwriteBootloader: overwriteBootloader || (s.kind === "spi" && env.yes),
    ...jobOptions(s, env),
  });
  finish(
    s,
    env,
    {
      addr: args.addr,
      size,
      image: args.image,
      crc32: crcHex((await scanSource(toSource(image))).crc32),
      keptBootloader: plan.keptBootloader,
      ...programJson(r),
    },
    programHuman(r, "write"),
    programCost(r),
  );
}

/** `verify-flash`. */
export async function verifyFlashCommand(
  s: Session,
  env: CommandEnv,
  args: { image: string; data: Uint8Array | ByteSource; addr: number },
): Promise<void> {
  const ctx = await contextFor(s, env);
  const r = await verifyFlash(ctx, args.data, { addr: args.addr });
  finish(
    s,
    env,
    { addr: args.addr, size: r.size, image: args.image, crc32: crcHex(r.crc32), verified: true },
    [
      `Verified ${args.image} (${r.size} bytes, CRC-32 ${crcHex(r.crc32)}) at ${
        hex(args.addr)
      }: flash matches`,
    ],
    { operation: r.accounting },
  );
}

/** `erase-region`. */
export async function eraseRegionCommand(
  s: Session,
  env: CommandEnv,
  args: { addr: number; size: number },
): Promise<void> {
  const ctx = await contextFor(s, env);
  const r = await eraseRegion(ctx, {
    addr: args.addr,
    size: args.size,
    overwriteBootloader: await bootloaderAllowed(s, env, "erase", args.addr, args.size),
    ...jobOptions(s, env),
  });
  finish(
    s,
    env,
    { addr: args.addr, size: args.size, ...programJson(r) },
    programHuman(r, "erase"),
    programCost(r),
  );
}

/** `read-key`. */
export function readKeyCommand(s: Session, env: CommandEnv): Promise<void> {
  const id = s.uart?.identity;
  if (!id?.key) {
    throw new FlashError(
      "UNSUPPORTED",
      `the ${s.identity.chip} ${id ? `${id.personality} loader` : "path"} cannot read the efuse key`,
      "the key is readable over the BootROM (FULL) loader: BK7231N/M, BK7238, BK7252N",
    );
  }
  const key = formatKey(id.key);
  finish(s, env, {
    chip: s.identity.chip,
    key,
    expected: id.profile.key ? formatKey(id.profile.key.words) : null,
  }, [
    `Key: ${key}`,
  ]);
  return Promise.resolve();
}

/** `reboot`. */
export async function rebootCommand(s: Session, env: CommandEnv): Promise<void> {
  await s.target.reboot();
  const boot = s.emulatedBoot?.();
  finish(s, env, { rebooted: true, ...(boot ? { boot } : {}) }, [
    `Rebooted ${s.identity.chip} into its application`,
    ...(boot
      ? [`Emulated chip: ${boot.boots ? `prints "${boot.line}" at 115200` : `silent: ${boot.reason}`}`]
      : []),
  ]);
}
