/**
 * The hermitux command line. `deno run -A cli.ts run BIN [ARGS…]`.
 *
 * From a checkout, the CLI's code is loaded as a bundle kept in the cache
 * when the sources have not changed since it was made (src/cli/bundle.ts):
 * Deno's loader takes a third of the time over it.
 * @module
 */
import type { MainOptions } from "./src/cli/main.ts";
import { loadCli } from "./src/cli/bundle.ts";

export type { MainOptions };

/** Runs the CLI with `args`; resolves to the process exit status. */
export async function main(
  args: string[],
  cwd: string = Deno.cwd(),
  opts: MainOptions = {},
): Promise<number> {
  const { cli, from } = await loadCli(new URL("./", import.meta.url));
  return await cli.main(args, cwd, { code: from, ...opts });
}

if (import.meta.main) {
  // `deno task hermitux` runs from the config's folder and says where the user was.
  const cwd = Deno.env.get("HERMITUX_CWD") || Deno.cwd();
  // The process ends with the run: its exit status is known, the guest's output written.
  Deno.exit(await main(Deno.args, cwd, { exits: true }));
}
