// The CLI's option parser (src/cli/args.ts, in place of node:util's parseArgs,
// whose import loads Deno's Node layer) against parseArgs itself, and
// resolvePath against node:path's resolve.
import { deepStrictEqual, equal } from "node:assert/strict";
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { parseOptions, resolvePath } from "../src/cli/args.ts";

const OPTIONS = {
  mem: { type: "string" },
  env: { type: "string", multiple: true },
  trace: { type: "boolean" },
  verbose: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
  mount: { type: "string", multiple: true, short: "m" },
} as const;

/** What a parser gave: its values and positionals, or its error's message. */
function outcome(f: () => { values: object; positionals: string[] }): unknown {
  try {
    const { values, positionals } = f();
    return { values: { ...values }, positionals };
  } catch (e) {
    return (e as Error).message;
  }
}

Deno.test("parseOptions agrees with node:util parseArgs (strict)", () => {
  const cases = [
    [],
    ["--mem", "1G"],
    ["--mem=2G", "--trace"],
    ["--mem", "1G", "--mem", "2G"],
    ["--env", "A=1", "--env=B=2"],
    ["-v"],
    ["-vh"],
    ["-m/a:/b", "-m", "/c:/d"],
    ["-vm", "/x:/y"],
    ["--mem="],
    ["--bogus"],
    ["-x"],
    ["--mem"],
    ["--trace=1"],
    ["--mem", "-5"],
    ["--", "--mem"],
    ["pos"],
  ];
  for (const allowPositionals of [false, true]) {
    for (const args of cases) {
      deepStrictEqual(
        outcome(() => parseOptions(args, OPTIONS, allowPositionals)),
        outcome(() => parseArgs({ args, options: OPTIONS, strict: true, allowPositionals })),
        JSON.stringify(args),
      );
    }
  }
});

Deno.test("resolvePath agrees with node:path resolve", () => {
  const cases = [
    ["/a/b", "c"],
    ["/a/b", "/c/d"],
    ["/a/b", "../c"],
    ["/a/b", "./c/", ""],
    ["/a/b", "c", "../../.."],
    ["/", "a//b/./c"],
    ["/a", "b", "/x", "y"],
  ];
  for (const parts of cases) equal(resolvePath(...parts), resolve(...parts), parts.join(" "));
});
