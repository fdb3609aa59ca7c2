/**
 * The emulator's control socket (`deno task emulate --pty --control <path>`): a Unix socket
 * taking one JSON object per line, so a test harness can deliver what a pseudo-terminal cannot
 * carry: modem-line changes (`{"dtr":false,"rts":true}`, through the board's reset wiring) and
 * resets (`{"reset":true}`). Each line is answered with one line: `{"ok":true,"dtr":…,"rts":…}`
 * or `{"ok":false,"error":"…"}`.
 *
 * @module
 */

import { FlashError } from "../core/errors.ts";
import { chipLines, type ResetLine } from "./reset_wiring.ts";
import type { UartDevice } from "./uart_device.ts";

/** What the control socket acts on. */
export interface ControlTarget {
  device: UartDevice;
  /** The device's current time (the server's clock). */
  now(): number;
  /** Which modem line drives CEN (default "rts"). */
  resetLine?: ResetLine;
  /** One line per request carried out. */
  log?: (line: string) => void;
}

/** A running control socket. */
export interface ControlServer {
  readonly path: string;
  /** Stop listening, drop connections and remove the socket file. */
  close(): Promise<void>;
}

/** A request line longer than this is refused (the connection stays). */
const MAX_LINE = 4096;

/** A parsed control request. */
export interface ControlRequest {
  dtr?: boolean;
  rts?: boolean;
  reset?: boolean;
}

/**
 * Parse one request line.
 *
 * @throws {Error} with a message for the client when the line is not a request.
 */
export function parseControlLine(line: string): ControlRequest {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error('not JSON: send one object per line, e.g. {"reset":true} or {"dtr":false,"rts":true}');
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("expected a JSON object");
  const out: ControlRequest = {};
  for (const [k, x] of Object.entries(v)) {
    if (k !== "dtr" && k !== "rts" && k !== "reset") {
      throw new Error(`unknown key "${k}" (use dtr, rts, reset)`);
    }
    if (typeof x !== "boolean") throw new Error(`"${k}" must be true or false`);
    out[k] = x;
  }
  if (Object.keys(out).length === 0) throw new Error("empty request: give dtr, rts or reset");
  return out;
}

/**
 * Listen on `path`. A stale socket file left by an earlier run is replaced; any other file there
 * is refused.
 *
 * @throws {FlashError} code "USAGE" when `path` is taken by something that is not a socket or
 * cannot be listened on.
 */
export async function serveControl(path: string, target: ControlTarget): Promise<ControlServer> {
  try {
    const st = await Deno.lstat(path);
    if (!st.isSocket) {
      throw new FlashError(
        "USAGE",
        `--control ${path}: a file that is not a socket is in the way`,
        "choose another path for the control socket",
      );
    }
    await Deno.remove(path);
  } catch (e) {
    if (e instanceof FlashError) throw e;
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new FlashError("USAGE", `--control ${path}: ${(e as Error).message}`, "choose another path");
    }
  }
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ transport: "unix", path });
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      // Deno grants Unix sockets through --allow-net, by exact path (unix:<absolute path>)
      throw new FlashError(
        "USAGE",
        `not allowed to listen on the control socket ${path}`,
        `run with --allow-net or --allow-net=unix:${path} (deno task emulate passes --allow-net)`,
        { cause: e },
      );
    }
    throw new FlashError(
      "USAGE",
      `cannot listen on the control socket ${path}: ${(e as Error).message}`,
      "choose a path in a writable directory (e.g. --control /tmp/chip.sock)",
    );
  }
  const log = target.log ?? (() => {});
  const wiring = target.resetLine ?? "rts";
  const lines = { dtr: false, rts: false };
  const conns = new Set<Deno.Conn>();
  const handled = new Set<Promise<void>>();

  const apply = (req: ControlRequest): string => {
    if (req.dtr !== undefined) lines.dtr = req.dtr;
    if (req.rts !== undefined) lines.rts = req.rts;
    if (req.dtr !== undefined || req.rts !== undefined) {
      const chip = chipLines(wiring, lines);
      if (chip) target.device.signals(chip, target.now());
      log(`control: DTR=${Number(lines.dtr)} RTS=${Number(lines.rts)}${chip ? "" : " (wired to nothing)"}`);
    }
    if (req.reset) {
      target.device.reset(target.now());
      log("control: chip reset");
    }
    return JSON.stringify({ ok: true, ...lines });
  };

  const serve = async (conn: Deno.Conn) => {
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    const buf = new Uint8Array(4096);
    let text = "";
    const answer = async (s: string) => {
      const b = enc.encode(s + "\n");
      for (let at = 0; at < b.length;) at += await conn.write(b.subarray(at));
    };
    try {
      for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
        text += dec.decode(buf.subarray(0, n), { stream: true });
        for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
          const line = text.slice(0, nl).trim();
          text = text.slice(nl + 1);
          if (!line) continue;
          let reply: string;
          try {
            reply = apply(parseControlLine(line));
          } catch (e) {
            reply = JSON.stringify({ ok: false, error: (e as Error).message });
          }
          await answer(reply);
        }
        if (text.length > MAX_LINE) {
          text = "";
          await answer(JSON.stringify({ ok: false, error: `line longer than ${MAX_LINE} bytes dropped` }));
        }
      }
    } catch {
      // the harness went away mid-line
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // closed already
      }
    }
  };

  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const p = serve(conn);
        handled.add(p);
        p.finally(() => handled.delete(p));
      }
    } catch {
      // the listener was closed
    }
  })();

  return {
    path,
    async close() {
      try {
        listener.close();
      } catch {
        // closed already
      }
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed already
        }
      }
      await accepting;
      await Promise.all(handled);
      await Deno.remove(path).catch(() => {});
    },
  };
}
