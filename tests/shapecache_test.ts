// The stub rewriter's answers kept across runs (src/analysis/shapecache.ts):
// a second run of a dynamic program asks the cache, not libc's symbols, and
// rewrites the same sites; a damaged or lying cache changes nothing.
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { hermituxCommand, inTempDir } from "./fixtures.ts";
import { buildId } from "../src/analysis/shapecache.ts";
import { parseElf } from "../src/loader/elf.ts";

const PVM = await Deno.stat("/sys/module/kvm_pvm").then(() => true, () => false);
const SCRIPT = "import os\nfor i in range(200): os.getppid(); os.write(1, b'') \nprint('ok')";

/** python3 under the CLI with --rewrite=stub and the cache in `dir`: stdout and rewrite stats. */
async function run(dir: string) {
  const c = hermituxCommand("/usr/bin/python3", ["-c", SCRIPT], {
    flags: ["--rewrite=stub", "--stats"],
  });
  const r = await new Deno.Command(c.cmd, {
    args: c.args,
    env: { ...c.env, HERMITUX_CACHE_DIR: dir },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(r.stderr);
  const stats = JSON.parse(/hermitux: stats (.*)/.exec(err)?.[1] ?? "null");
  return { out: new TextDecoder().decode(r.stdout), code: r.code, sites: stats?.rewrite?.sites };
}

Deno.test("rewrite shapes cached across runs; a damaged cache changes nothing", {
  ignore: !PVM,
}, async () => {
  await inTempDir(async (dir) => {
    const first = await run(dir);
    equal(first.code, 0);
    equal(first.out, "ok\n");
    ok(first.sites > 10, `${first.sites} sites`);
    const libc = Deno.readFileSync("/lib/x86_64-linux-gnu/libc.so.6");
    const id = buildId(libc, parseElf(libc));
    ok(id, "libc has a build id");
    const file = `${dir}/sites-v1/${id}-${libc.length}.json`;
    const saved = JSON.parse(await Deno.readTextFile(file));
    ok(Object.keys(saved).length >= 5, `libc entries: ${Object.keys(saved).length}`);
    deepStrictEqual(await run(dir), first); // from the cache: the same sites

    // Every entry lies about its instruction, its function or both: each is
    // decoded again, found wrong and computed anew.
    const lies = Object.fromEntries(
      Object.keys(saved).map((
        k,
        i,
      ) => [k, { fn: { start: 16 * i, end: 1 << 20 }, len: 5, pads: [] }]),
    );
    await Deno.writeTextFile(file, JSON.stringify(lies));
    deepStrictEqual(await run(dir), first);
    await Deno.writeTextFile(file, "{not json");
    deepStrictEqual(await run(dir), first);
  }, "shapes");
});

Deno.test("buildId: the GNU build id of an ELF file, as readelf shows it", async () => {
  const bytes = Deno.readFileSync("/bin/busybox");
  const r = await new Deno.Command("readelf", { args: ["-n", "/bin/busybox"], stdout: "piped" })
    .output();
  const want = /Build ID: ([0-9a-f]+)/.exec(new TextDecoder().decode(r.stdout))?.[1];
  equal(buildId(bytes, parseElf(bytes)), want);
});
