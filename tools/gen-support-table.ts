/**
 * Writes docs/SYSCALLS.md, the syscall support table, from the code.
 *
 * ```sh
 * deno run -A tools/gen-support-table.ts          # write it
 * deno run -A tools/gen-support-table.ts --check  # exit 1 if it is out of date
 * ```
 * @module
 */
import { supportMarkdown, supportTable } from "../src/syscalls/support.ts";

/** Where the table is written, from the repository root. */
export const SUPPORT_DOC = new URL("../docs/SYSCALLS.md", import.meta.url);

if (import.meta.main) {
  const text = supportMarkdown(supportTable());
  const path = SUPPORT_DOC.pathname;
  if (Deno.args.includes("--check")) {
    let old: string | undefined;
    try {
      old = await Deno.readTextFile(SUPPORT_DOC);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (old !== text) {
      console.error(
        `${path} is out of date: run \`deno run -A tools/gen-support-table.ts\` to regenerate it`,
      );
      Deno.exit(1);
    }
    console.log(`${path} is up to date`);
  } else {
    await Deno.mkdir(new URL(".", SUPPORT_DOC), { recursive: true });
    await Deno.writeTextFile(SUPPORT_DOC, text);
    console.log(`wrote ${path}`);
  }
}
