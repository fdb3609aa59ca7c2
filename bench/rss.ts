/**
 * (f) Peak resident memory of writing an image, measured in a fresh subprocess
 * (bench/rss_child.ts) so nothing else in the benchmark inflates it: a 16 MiB image on a
 * 16 MiB part, and a 2 MiB one for comparison (memory should stay flat with image size; the
 * virtual chip itself holds its whole flash, 16 MiB of the figure).
 *
 * @module
 */

/** What one child run reported. */
export interface RssFigure {
  mib: number;
  changed: number;
  flashMiB: number;
  rssBeforeJobMiB: number;
  peakRssMiB: number;
  modelledS: number;
}

/** Run the child for an image of `mib` MiB. */
export async function rssFigure(mib: number): Promise<RssFigure> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-sys",
      new URL("./rss_child.ts", import.meta.url).pathname,
      "--mib",
      String(mib),
    ],
    stdout: "piped",
    stderr: "piped",
  });
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) throw new Error(`rss child failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(text.split("\n").at(-1)!);
}
