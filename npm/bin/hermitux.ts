#!/usr/bin/env node
/**
 * The `hermitux` command on Node (`npx hermitux run PROG`): the CLI's main
 * on the `Deno` shim, ending with its exit status.
 * @module
 */
// deno-lint-ignore no-process-global
const process = globalThis.process; // not node:process: see shim/runtime.ts
import "../shim/install.ts";
import { main } from "../../cli.ts";

process.exit(
  await main(process.argv.slice(2), process.env.HERMITUX_CWD || process.cwd(), {
    exits: true,
  }),
);
