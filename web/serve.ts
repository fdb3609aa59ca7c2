/**
 * A static file server for the built page, on loopback only (the page needs no server-side
 * code; browsers allow Web Serial and WebUSB on `http://127.0.0.1` and `localhost`).
 *
 * @module
 */

import { extname, join, normalize } from "node:path";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
  ".json": "application/json",
  ".png": "image/png",
};

/** A running server. */
export interface StaticServer {
  url: string;
  finished: Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * Serve `dir` on `addr` ("127.0.0.1:0" picks a free port).
 *
 * @throws {Error} when `addr` is not a loopback address.
 */
export function serveDir(dir: string, addr: string): StaticServer {
  const m = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]):(\d{1,5})$/.exec(addr);
  if (!m) throw new Error(`--serve ${addr}: only loopback addresses such as 127.0.0.1:8080 are served`);
  const hostname = m[1].replace(/^\[|\]$/g, "");
  const server = Deno.serve({ hostname, port: Number(m[2]), onListen: () => {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    const rel = normalize(path === "/" ? "/index.html" : path);
    if (rel.includes("..")) return new Response("not found", { status: 404 });
    try {
      const body = await Deno.readFile(join(dir, rel));
      return new Response(body, {
        headers: { "content-type": TYPES[extname(rel)] ?? "application/octet-stream" },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  const a = server.addr as Deno.NetAddr;
  const host = a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname;
  return { url: `http://${host}:${a.port}/`, finished: server.finished, shutdown: () => server.shutdown() };
}
