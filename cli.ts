/**
 * The hermitux command line. `deno run -A cli.ts run BIN [ARGS…]`.
 * @module
 */
import { main } from "./src/cli/main.ts";
import { keepSpareMemory } from "./src/vm/memory.ts";

export { main };

if (import.meta.main) {
  // One boot, then the process ends: no RAM is kept (cleared) for a next VM.
  keepSpareMemory(false);
  // `deno task hermitux` runs from the config's folder and says where the user was.
  Deno.exit(await main(Deno.args, Deno.env.get("HERMITUX_CWD") || Deno.cwd()));
}
