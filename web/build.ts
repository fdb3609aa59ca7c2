/**
 * `deno task web [--serve host:port]`: bundle the page (`web/main.ts` and the core it uses)
 * for browsers into `web/dist/` with `deno bundle --platform browser`, refuse a bundle that
 * still reaches for `Deno.*` or a `node:`/`npm:` module, and optionally serve the folder on a
 * loopback address, printing the URL as the first line.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { serveDir } from "./serve.ts";

const WEB = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(WEB);
/** Where the site goes. */
export const DIST: string = join(WEB, "dist");

/**
 * Browser builds of the `node:` modules the core imports. Only what a page can really do
 * belongs here; anything else must stay out of the page's module graph.
 */
const BROWSER_SHIMS: Record<string, string> = {
  "node:zlib": "./web/shims/zlib.ts",
  "node:crypto": "./web/shims/crypto.ts",
};

/** What must not appear in the bundle, and why. */
const FORBIDDEN: { pattern: RegExp; why: string }[] = [
  { pattern: /\bDeno\s*\.\s*[A-Za-z_]/, why: "uses the Deno namespace, which browsers lack" },
  { pattern: /(?:from\s*|import\s*\(\s*|require\s*\(\s*)["']node:/, why: "imports a node: module" },
  {
    pattern: /(?:from\s*|import\s*\(\s*)["']npm:/,
    why: "imports an npm: specifier a browser cannot resolve",
  },
];

/** Problems found in a bundle's text: one line each, with the offending line number. */
export function forbiddenUses(bundle: string): string[] {
  const found: string[] = [];
  bundle.split("\n").forEach((line, i) => {
    for (const f of FORBIDDEN) {
      if (f.pattern.test(line)) found.push(`line ${i + 1} ${f.why}: ${line.trim().slice(0, 120)}`);
    }
  });
  return found;
}

/** Build the site into {@link DIST}; throws with every forbidden use listed. */
export async function buildSite(): Promise<{ bundleBytes: number }> {
  await Deno.mkdir(DIST, { recursive: true });
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const importMap = join(DIST, ".import_map.json");
  await Deno.writeTextFile(
    importMap,
    JSON.stringify({ imports: { ...config.imports, ...absolute(BROWSER_SHIMS) } }, null, 2),
  );
  const out = join(DIST, "app.js");
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "browser",
      "--import-map",
      importMap,
      "--minify",
      "--sourcemap",
      "linked",
      "-o",
      out,
      join(WEB, "main.ts"),
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  });
  const r = await cmd.output();
  await Deno.remove(importMap).catch(() => {/* nothing to clean */});
  if (!r.success) throw new Error(`deno bundle failed:\n${new TextDecoder().decode(r.stderr)}`);
  const bundle = await Deno.readTextFile(out);
  const problems = forbiddenUses(bundle);
  if (problems.length > 0) {
    await Deno.remove(out);
    throw new Error(`the browser bundle is not browser-safe:\n${problems.join("\n")}`);
  }
  for (const f of ["index.html", "style.css"]) await Deno.copyFile(join(WEB, f), join(DIST, f));
  return { bundleBytes: bundle.length };
}

function absolute(map: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, `file://${join(ROOT, v)}`]));
}

if (import.meta.main) {
  const args = Deno.args;
  const at = args.indexOf("--serve");
  try {
    const { bundleBytes } = await buildSite();
    if (at < 0) {
      console.log(`built ${DIST} (app.js ${Math.round(bundleBytes / 1024)} KiB)`);
    } else {
      const server = serveDir(DIST, args[at + 1] ?? "127.0.0.1:0");
      console.log(server.url);
      console.error(`serving ${DIST}; Ctrl-C stops`);
      await server.finished;
    }
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : e}`);
    console.error("remedy: fix the import named above (the page may only use browser-safe modules)");
    Deno.exit(1);
  }
}
