// deno fmt, deno lint and deno doc --lint are clean.
import { equal } from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;

async function deno(args: string[]) {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code: r.code,
    out: new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr),
  };
}

for (
  const [name, args] of [
    ["deno fmt --check", ["fmt", "--check"]],
    ["deno lint", ["lint"]],
    ["deno doc --lint", ["doc", "--lint", "mod.ts", "cli.ts"]],
  ] as const
) {
  Deno.test(`${name} is clean`, async () => {
    const r = await deno([...args]);
    equal(r.code, 0, r.out);
  });
}
