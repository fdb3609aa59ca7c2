/**
 * `deno task bench`: the benchmark (bench/), running this CLI in-process for its UART figures.
 *
 * @module
 */

import { run } from "../bench/bench.ts";
import { useCli } from "../bench/cli_run.ts";
import { main } from "./flash.ts";

if (import.meta.main) {
  useCli(main);
  await run();
}
