/**
 * The boot loader's command dispatcher, driven by the shared command table. One function per
 * command; the personality decides which are answered and how (docs/uart.md §4, §5, §8.1).
 *
 * @module
 */

import {
  BL2_LINK_CHECK,
  commandByKey,
  type CommandName,
  type CommandSpec,
  type CommandTable,
  type ReplyValues,
  type RequestValues,
  STATUS_UNKNOWN_COMMAND,
} from "../core/uart/table.ts";
import { decodeRequest, encodeReply, frameReply, type RequestFrame } from "../core/uart/codec.ts";
import { chipToStandard } from "../core/crc.ts";
import { LOADER_STATUS } from "../core/errors.ts";
import { SPI_OP } from "../core/spi/opcodes.ts";
import { baudReplyDelayMs, crcLength } from "../core/chips/loaders.ts";
import { wireMs } from "../core/timing.ts";
import { wrappedCrc } from "./flash_crc.ts";
import type { LoaderFlash, LoaderHost, LoaderReply } from "./loader_host.ts";

export { crc32Combine } from "./flash_crc.ts";
export type { LoaderFlash, LoaderHost, LoaderReply } from "./loader_host.ts";

/** SR1 value with every block-protect bit set: what a basic loader writes after CheckCRC. */
function protectAllSr(flash: LoaderFlash): number {
  const { bpShift, bpBits } = flash.part.layout;
  return (((1 << bpBits) - 1) << bpShift) & 0xff;
}

function isProtected(flash: LoaderFlash): boolean {
  const r = flash.protectedRange();
  return r.end > r.start;
}

/**
 * Handle one request frame at time `now`. Unknown or unsupported commands are answered with
 * status 7 or ignored, as the loader family does.
 */
export function handleRequest(
  host: LoaderHost,
  req: RequestFrame,
  now: number,
  replyMs: number,
): LoaderReply {
  const spec = commandByKey(req.kind, req.code);
  if (
    req.kind === "short" && req.code === BL2_LINK_CHECK.code &&
    host.family.extraCommands.includes("bl2LinkCheck")
  ) {
    const bytes = frameReply("short", BL2_LINK_CHECK.replyCode, Uint8Array.of(0));
    return { bytes, at: now + replyMs, name: "Bl2LinkCheck" };
  }
  const unknown = (name: string): LoaderReply => {
    if (host.family.unknownCommand === "silent") return { bytes: null, at: now, name };
    const bytes = req.kind === "short"
      ? frameReply("short", req.code, Uint8Array.of(STATUS_UNKNOWN_COMMAND))
      : frameReply("long", req.code, new Uint8Array(0), STATUS_UNKNOWN_COMMAND);
    return { bytes, at: now + replyMs, name };
  };
  if (!spec) return unknown(`unknown ${req.kind} 0x${req.code.toString(16)}`);
  if (!spec.support.includes(host.personality)) return unknown(spec.name);
  const v = decodeRequest(spec, req.payload);
  if (!v) {
    if (spec.frame === "long") {
      return {
        bytes: frameReply("long", spec.code, new Uint8Array(0), LOADER_STATUS.PACKET_LENGTH_ERROR),
        at: now + replyMs,
        name: spec.name,
      };
    }
    return { bytes: null, at: now, name: spec.name };
  }
  return dispatch(host, spec.name, spec, v, now, replyMs);
}

/** A command's handler: its request fields come typed from its table row. */
type Handler<N extends CommandName> = (
  host: LoaderHost,
  spec: CommandTable[N],
  v: RequestValues<CommandTable[N]>,
  now: number,
  replyMs: number,
) => LoaderReply;

/** Run the handler of command `name` (one generic call, so each row meets its own handler). */
function dispatch<N extends CommandName>(
  host: LoaderHost,
  name: N,
  spec: CommandTable[N],
  v: RequestValues<CommandTable[N]>,
  now: number,
  replyMs: number,
): LoaderReply {
  const handler: Handler<N> = HANDLERS[name];
  return handler(host, spec, v, now, replyMs);
}

function ok<C extends CommandSpec>(spec: C, values: ReplyValues<C>, at: number): LoaderReply {
  return { bytes: encodeReply(spec, values), at, name: spec.name };
}

function refused(spec: CommandSpec, addr: number, at: number, extra = new Uint8Array(0)): LoaderReply {
  const payload = new Uint8Array(4 + extra.length);
  new DataView(payload.buffer).setUint32(0, addr >>> 0, true);
  payload.set(extra, 4);
  return {
    bytes: frameReply("long", spec.code, payload, LOADER_STATUS.PARAMETER_ERROR),
    at,
    name: `${spec.name} (refused)`,
  };
}

/** The raw address is inside the window a basic bootloader refuses. */
function inLoaderWindow(host: LoaderHost, raw: number): boolean {
  return raw >>> 0 < host.loaderProtectedEnd;
}

/**
 * A write or erase of `[raw, raw + len)` overlaps a range the loader refuses without a word
 * (BK7236/BK7258 forbidden partitions): the request gets no reply at all.
 */
function silentlyForbidden(host: LoaderHost, raw: number, len: number, spec: CommandSpec, now: number) {
  const f = host.family.forbidden;
  if (f.answer !== "silence") return null;
  const a = raw >>> 0;
  if (!f.ranges.some((r) => a < r.end && a + len > r.start)) return null;
  return { bytes: null, at: now, name: `${spec.name} (forbidden: no reply)` } satisfies LoaderReply;
}

/** Before an erase, a basic loader unprotects only if its flag says so (docs/uart.md §5.4). */
function lockBeforeErase(host: LoaderHost, now: number): number {
  if (!host.crcProtectLock) return now;
  if (host.lock.protectFlag) {
    host.lock.protectFlag = false;
    return host.flash.writeSr(SPI_OP.WRITE_SR, Uint8Array.of(0), now).doneAt;
  }
  return now;
}

const HANDLERS: { [N in CommandName]: Handler<N> } = {
  LinkCheck(host, spec, _v, now, replyMs) {
    if (host.crcProtectLock) host.lock.protectFlag = isProtected(host.flash);
    return ok(spec, { ok: 0 }, now + replyMs);
  },
  WriteReg(host, spec, v, now, replyMs) {
    host.writeReg(v.addr, v.value);
    return ok(spec, v, now + replyMs);
  },
  ReadReg(host, spec, v, now, replyMs) {
    return ok(spec, { addr: v.addr, value: host.readReg(v.addr) >>> 0 }, now + replyMs);
  },
  Reboot(host, spec, v, now) {
    if (v.magic === 0xa5) host.reboot(now);
    return { bytes: null, at: now, name: spec.name };
  },
  SetBaudRate(host, spec, v, now) {
    // the UART switches first, then the loader waits, then it replies at the new rate
    host.switchBaud(v.baud, now);
    const at = now + baudReplyDelayMs(host.family.baudDelay, v.delay);
    return { bytes: encodeReply(spec, v), at, baud: host.baudAt(now), name: spec.name };
  },
  CheckCRC(host, spec, v, now, replyMs) {
    const start = v.start;
    const end = v.end;
    const len = crcLength(host.family.crcLength, start, end);
    const crc = wrappedCrc(host.flash, start, len);
    const busy = (len / host.crcBytesPerSec) * 1000;
    if (host.crcProtectLock) {
      host.flash.writeSr(SPI_OP.WRITE_SR, Uint8Array.of(protectAllSr(host.flash)), now);
    }
    return ok(spec, { crc: chipToStandard(crc) }, now + busy + replyMs);
  },
  ReadBootVersion(host, spec, _v, now, replyMs) {
    return ok(spec, { version: new TextEncoder().encode(host.bootVersion ?? "") }, now + replyMs);
  },
  Reset(host, spec, v, now) {
    if (v.magic === 0x4e414553) host.reboot(now);
    return { bytes: null, at: now, name: spec.name };
  },
  StayRom(_host, spec, v, now, replyMs) {
    return ok(spec, v, now + replyMs);
  },
  FlashWrite(host, spec, v, now, replyMs) {
    const addr = v.addr;
    const data = v.data;
    if (data.length < 1 || data.length > 256) {
      return {
        bytes: frameReply("long", spec.code, new Uint8Array(0), LOADER_STATUS.PACKET_LENGTH_ERROR),
        at: now + replyMs,
        name: spec.name,
      };
    }
    if (inLoaderWindow(host, addr)) return refused(spec, addr, now + replyMs, Uint8Array.of(0));
    const silent = silentlyForbidden(host, addr, data.length, spec, now);
    if (silent) return silent;
    const done = host.flash.program(addr % host.flash.size, data, now).doneAt;
    return ok(spec, { addr, count: data.length & 0xff }, done + replyMs);
  },
  FlashWrite4K(host, spec, v, now, replyMs) {
    const addr = v.addr;
    if (inLoaderWindow(host, addr)) return refused(spec, addr, now + replyMs);
    const data = v.data;
    const silent = silentlyForbidden(host, addr, data.length, spec, now);
    if (silent) return silent;
    // a loader that programs each page as soon as it has arrived overlaps with the reception
    const byteMs = host.family.write4kOverlap ? wireMs(1, host.baudAt(now)) : 0;
    let t = now;
    for (let off = 0; off < data.length; off += 256) {
      const arrived = now - (data.length - off - 256) * byteMs;
      t = host.flash.program(
        (addr + off) % host.flash.size,
        data.subarray(off, off + 256),
        Math.max(t, arrived),
      )
        .doneAt;
    }
    return ok(spec, { addr }, t + replyMs);
  },
  FlashRead(host, spec, v, now, replyMs) {
    const addr = v.addr;
    const data = host.flash.read(addr % host.flash.size, v.length);
    return ok(spec, { addr, data }, now + replyMs);
  },
  FlashRead4K(host, spec, v, now, replyMs) {
    const addr = v.addr;
    if (inLoaderWindow(host, addr)) return refused(spec, addr, now + replyMs, Uint8Array.of(0));
    return ok(spec, { addr, data: host.flash.read(addr % host.flash.size, 4096) }, now + replyMs);
  },
  FlashEraseAll(host, spec, v, now, replyMs) {
    const silent = silentlyForbidden(host, 0, host.flash.size, spec, now);
    if (silent) return silent;
    const done = host.flash.eraseRange(0, "chip", now).doneAt;
    return ok(spec, { arg: v.arg }, done + replyMs);
  },
  FlashErase4K(host, spec, v, now, replyMs) {
    const addr = v.addr;
    const silent = silentlyForbidden(host, addr - (addr % 0x1000), 0x1000, spec, now);
    if (silent) return silent;
    const done = host.flash.eraseRange(addr % host.flash.size, "4k", now).doneAt;
    return ok(spec, { addr }, done + replyMs);
  },
  FlashReadSR(host, spec, v, now, replyMs) {
    const cmd = v.cmd;
    return ok(spec, { cmd, value: host.flash.readSr(cmd, now) & 0xff }, now + replyMs);
  },
  FlashWriteSR(host, spec, v, now, replyMs) {
    const value = v.value;
    if (value.length < 1 || value.length > 2) {
      return {
        bytes: frameReply("long", spec.code, new Uint8Array(0), LOADER_STATUS.PACKET_LENGTH_ERROR),
        at: now + replyMs,
        name: spec.name,
      };
    }
    const cmd = v.cmd;
    const unchanged = cmd === 0x01 && value.every((b, i) => b === host.flash.readSr(i === 0 ? 0x05 : 0x35));
    const done = host.flash.writeSr(cmd, value, now).doneAt;
    const q = host.srLockQuirk;
    if (q && unchanged && q.flashId.every((b, i) => host.flash.jedecId[i] === b)) {
      // a P25Q16HBK behind the T1 loader reads 0x7BFC (SRP0/SRP1 set) after a no-op WRSR
      host.flash.srWord = q.lockedSr;
    }
    // WREN + WRSR + WRDI, then the reply: some loaders do not wait for the flash
    return ok(spec, v, (host.family.writeSrRepliesEarly ? now : done) + replyMs);
  },
  FlashGetMID(host, spec, _v, now, replyMs) {
    return ok(spec, { pad: 0, id: Uint8Array.from(host.flash.jedecId) }, now + replyMs);
  },
  FlashErase(host, spec, v, now, replyMs) {
    const sizeCmd = v.sizeCmd;
    const addr = v.addr;
    const kind = sizeCmd === SPI_OP.ERASE_4K
      ? "4k"
      : sizeCmd === SPI_OP.ERASE_32K
      ? "32k"
      : sizeCmd === SPI_OP.ERASE_64K
      ? "64k"
      : null;
    if (!kind) {
      return {
        bytes: frameReply("long", spec.code, new Uint8Array(0), LOADER_STATUS.PARAMETER_ERROR),
        at: now + replyMs,
        name: spec.name,
      };
    }
    if (inLoaderWindow(host, addr)) {
      const payload = Uint8Array.of(
        sizeCmd,
        addr & 0xff,
        (addr >>> 8) & 0xff,
        (addr >>> 16) & 0xff,
        addr >>> 24,
      );
      return {
        bytes: frameReply("long", spec.code, payload, LOADER_STATUS.PARAMETER_ERROR),
        at: now + replyMs,
        name: `${spec.name} (refused)`,
      };
    }
    const unit = kind === "4k" ? 0x1000 : kind === "32k" ? 0x8000 : 0x10000;
    const silent = silentlyForbidden(host, addr - (addr % unit), unit, spec, now);
    if (silent) return silent;
    const t = lockBeforeErase(host, now);
    const done = host.flash.eraseRange(addr % host.flash.size, kind, t).doneAt;
    return ok(spec, { sizeCmd, addr }, done + replyMs);
  },
};
