// A guest that issues 100,000 random syscalls: the host survives, nothing
// outside the mounts changes, and the run ends cleanly.
import { deepStrictEqual, equal, match } from "node:assert/strict";
import { fixture } from "./fixtures.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    out.push(e.name);
    if (e.isDirectory) out.push(...(await tree(`${dir}/${e.name}`)).map((n) => `${e.name}/${n}`));
  }
  return out.sort();
}

Deno.test("100,000 random syscalls: the host survives, nothing outside the mounts changes", async () => {
  const bin = await fixture("fuzz", "musl-static");
  const outside = await Deno.makeTempDir({ prefix: "hermitux-fuzz-outside-" });
  const jail = await Deno.makeTempDir({ prefix: "hermitux-fuzz-jail-" });
  try {
    await Deno.writeTextFile(`${outside}/sentinel`, "untouched\n");
    await Deno.mkdir(`${jail}/d`);
    await Deno.writeTextFile(`${jail}/f`, "fuzz me\n");
    await Deno.symlink(`${outside}/sentinel`, `${jail}/link`);
    const before = await tree(outside);
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        `${ROOT}cli.ts`,
        "run",
        "--no-default-mounts",
        "--timeout",
        "240",
        "--mount",
        `${jail}:/work`,
        "--workdir",
        "/work",
        bin,
        "100000",
        "0x1234567",
      ], // deno-fmt-ignore
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(r.stderr);
    equal(r.code, 0, stderr.slice(-2000));
    // It got to the end; unsupported syscalls (and network access, not
    // granted) were named once each.
    const lines = stderr.trim().split("\n");
    match(lines.pop()!, /^fuzzed \d{5} syscalls$/);
    for (const line of lines) {
      match(
        line,
        /^hermitux: (unsupported syscall \w+ \(\d+\)|network access to \S+ denied \(use --allow-net\)|raw sockets denied \(use --allow-net\))(: .+)?$/,
      );
    }
    equal(new Set(lines).size, lines.length);
    deepStrictEqual(await tree(outside), before);
    equal(await Deno.readTextFile(`${outside}/sentinel`), "untouched\n");
  } finally {
    await Deno.remove(outside, { recursive: true });
    await Deno.remove(jail, { recursive: true });
  }
});
