/**
 * The hermitux command line. `deno run -A cli.ts run BIN [ARGS…]`.
 * @module
 */
import { main, type MainOptions } from "./src/cli/main.ts";

export { main, type MainOptions };

if (import.meta.main) {
  // `deno task hermitux` runs from the config's folder and says where the user was.
  const cwd = Deno.env.get("HERMITUX_CWD") || Deno.cwd();
  // The process ends with the run: its exit status is known, the guest's output written.
  Deno.exit(await main(Deno.args, cwd, { exits: true }));
}
