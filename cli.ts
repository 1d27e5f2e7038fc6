/**
 * The hermitux command line. `deno run -A cli.ts run BIN [ARGS…]`.
 * @module
 */
import { main } from "./src/cli/main.ts";

export { main };

if (import.meta.main) {
  // `deno task` runs from the config's folder; INIT_CWD is where the user was.
  Deno.exit(await main(Deno.args, Deno.env.get("INIT_CWD") ?? Deno.cwd()));
}
