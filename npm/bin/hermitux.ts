#!/usr/bin/env node
/**
 * The `hermitux` command on Node (`npx hermitux run PROG`): the CLI's main
 * on the `Deno` shim, ending with its exit status.
 * @module
 */
import module from "node:module";

// deno-lint-ignore no-process-global
const process = globalThis.process; // not node:process: see shim/runtime.ts

// Node 22.1+ keeps the compiled code of the ~190 modules between runs (Node 20 compiles
// them at every start: ~100 ms); imported after, so that it applies to them.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
await import("../shim/install.ts");
const { main } = await import("../../cli.ts");

process.exit(
  await main(process.argv.slice(2), process.env.HERMITUX_CWD || process.cwd(), {
    exits: true,
  }),
);
