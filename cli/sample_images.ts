/**
 * `deno task sample-images <dir>`: write the emulator-only sample images (core/image/samples.ts)
 * the README's BK7231M recipe uses. They are not firmware: `write-flash` refuses them on real ports.
 *
 * @module
 */

import { join } from "node:path";
import { sampleFiles } from "../core/image/samples.ts";

if (import.meta.main) {
  const dir = Deno.args[0];
  if (!dir) {
    console.error("error: no directory given\nremedy: deno task sample-images <dir>");
    Deno.exit(2);
  }
  await Deno.mkdir(dir, { recursive: true });
  for (const [name, data] of Object.entries(sampleFiles())) {
    await Deno.writeFile(join(dir, name), data);
    console.log(`${join(dir, name)} (${data.length} bytes)`);
  }
  console.log("emulator-only samples: write-flash refuses them on real ports");
}
