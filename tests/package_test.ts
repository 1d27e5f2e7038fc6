// The package as others get it: `deno publish --dry-run` passes (a license,
// npm dependencies as `npm:` specifiers), and the checkout works from a
// directory with no config of its own: a script that imports mod.ts by
// path boots a program, and cli.ts runs one.
import { equal, match } from "node:assert/strict";
import { fixture, inTempDir } from "./fixtures.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function deno(args: string[], cwd: string) {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: r.code, stdout: text(r.stdout), stderr: text(r.stderr) };
}

Deno.test("deno publish --dry-run passes", async () => {
  const r = await deno(["publish", "--dry-run", "--allow-dirty"], ROOT);
  equal(r.code, 0, r.stderr);
  match(r.stderr, /Simulating publish of @hermitux\/core@/);
  match(r.stderr, /LICENSE/);
  match(r.stderr, /src\/kernel\/kernel\.bin/); // the prebuilt guest kernel ships
});

Deno.test("from a directory with no config: mod.ts imported by path, cli.ts run", async () => {
  const hello = await fixture("hello", "musl-static");
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/script.ts`,
      `import { boot } from ${JSON.stringify(`${ROOT}mod.ts`)};\n` +
        `const r = await boot({ path: ${
          JSON.stringify(hello)
        }, args: ["from", "a", "script"] });\n` +
        `console.log("status", r.status);\n`,
    );
    const s = await deno(["run", "-A", "--quiet", "script.ts"], dir);
    equal(s.code, 0, s.stderr);
    match(s.stdout, /^hello, world\nstatus 0\n$/);
    const c = await deno(["run", "-A", "--quiet", `${ROOT}cli.ts`, "run", hello, "x"], dir);
    equal(c.code, 0, c.stderr);
    const a = await deno(["run", "-A", "--quiet", `${ROOT}cli.ts`, "analyze", hello], dir);
    equal(a.code, 0, a.stderr); // the disassembler, an npm package, loads from anywhere
  }, "package");
});
