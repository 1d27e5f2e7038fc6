// The CLI's code loaded as a bundle (src/cli/bundle.ts): made in the
// background by a first run, loaded by the runs after it while no source
// changed, with the kernel found next to the sources; the manifest's checks;
// the rewriting of esbuild's output.
import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import { build, bundleDir, freshBuild, relocate } from "../src/cli/bundle.ts";
import { fixture, runNative } from "./fixtures.ts";

const ROOT = new URL("../", import.meta.url);

function cli(args: string[], cache: string, env: Record<string, string> = {}) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${ROOT.pathname}cli.ts`, ...args],
    env: { HERMITUX_CACHE_DIR: cache, ...env },
    stdin: "null",
  }).output().then((r) => ({
    code: r.code,
    stdout: new TextDecoder().decode(r.stdout),
    stderr: new TextDecoder().decode(r.stderr),
  }));
}

/** Waits for the background build in `dir` to end (its lock gone, a manifest there). */
async function built(dir: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    let done = false;
    try {
      Deno.statSync(`${dir}/manifest.json`);
      done = true;
      Deno.statSync(`${dir}/lock`);
      done = false;
    } catch { /* not yet, or no lock left */ }
    if (done) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no bundle made in ${dir} within 60 s`);
}

Deno.test("a first run loads the sources and makes a bundle; the next runs load it", async () => {
  const cache = Deno.makeTempDirSync({ prefix: "hermitux-bundle-" });
  try {
    const hello = await fixture("hello", "glibc-dynamic");
    const native = await runNative(hello, ["a b"]);
    const first = await cli(["run", "--verbose", hello, "a b"], cache);
    equal(first.stdout, native.stdout);
    equal(first.code, 0);
    match(first.stderr, /code from the sources \(a bundle is being made for the next runs\)/);
    const dir = bundleDir(ROOT, cache)!;
    await built(dir);
    const build = freshBuild(dir);
    ok(build, "the new bundle is fresh");
    const second = await cli(["run", "--verbose", hello, "a b"], cache);
    equal(second.stdout, native.stdout);
    equal(second.code, 0);
    match(second.stderr, new RegExp(`code from the bundle ${build}\\n`));
    // Code in chunks of their own (the analysis, with iced-x86) loads from it too.
    const a = await cli(["analyze", hello], cache);
    equal(a.code, 0, a.stderr);
    match(a.stdout, /write/);
    // Turned off, the sources again, and no build started.
    const off = await cli(["run", "--verbose", hello], cache, { HERMITUX_BUNDLE: "0" });
    match(off.stderr, /code from the sources \(no bundle/);
    // A bundle's manifest names every module of the CLI that a run loads.
    const m = JSON.parse(Deno.readTextFileSync(`${dir}/manifest.json`));
    const files = (m.files as [string][]).map(([p]) => p);
    for (const f of ["src/cli/main.ts", "src/vm/vm.ts", "src/kernel/image.ts"]) {
      ok(files.includes(`${ROOT.pathname}${f}`), f);
    }
    ok(!files.some((p) => p.includes("/node_modules/")));
  } finally {
    Deno.removeSync(cache, { recursive: true });
  }
});

Deno.test("a bundle is stale once a file it was made from changes, goes or is not known", () => {
  const dir = Deno.makeTempDirSync({ prefix: "hermitux-manifest-" });
  try {
    const src = `${dir}/a.ts`;
    Deno.writeTextFileSync(src, "export const a = 1;\n");
    Deno.mkdirSync(`${dir}/b-1`);
    const write = (m: object) => Deno.writeTextFileSync(`${dir}/manifest.json`, JSON.stringify(m));
    const st = Deno.statSync(src);
    const good = {
      version: 1,
      deno: Deno.version.deno,
      build: "b-1",
      files: [[src, st.size, st.mtime!.getTime()]],
    };
    write(good);
    equal(freshBuild(dir), `${dir}/b-1`);
    write({ ...good, deno: "0.0.0" });
    equal(freshBuild(dir), undefined, "another Deno");
    write({ ...good, build: "../../etc" });
    equal(freshBuild(dir), undefined, "a build outside the folder");
    write({ ...good, files: [] });
    equal(freshBuild(dir), undefined, "no files");
    Deno.writeTextFileSync(`${dir}/manifest.json`, "{not json");
    equal(freshBuild(dir), undefined, "a torn manifest");
    write(good);
    Deno.writeTextFileSync(src, "export const a = 22;\n");
    equal(freshBuild(dir), undefined, "a changed file");
    Deno.removeSync(src);
    equal(freshBuild(dir), undefined, "a removed file");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a build waits for no other: a held lock makes it return at once", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "hermitux-lock-" });
  try {
    Deno.writeTextFileSync(`${dir}/lock`, "");
    await build(ROOT, dir); // another build holds it: nothing done
    deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["lock"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("relocate: import.meta.url per module, import.meta.main false, chunk imports opaque", () => {
  const js = [
    "// src/kernel/image.ts",
    "const u = new URL('./kernel.bin', import.meta.url);",
    "// src/vm/hostsignals.ts",
    "const w = new URL('./w.ts', import.meta.url); if (import.meta.main) f();",
    'const { x } = await import("./analyze-AB12.js");',
    'import("node:dns/promises");',
  ].join("\n");
  const out = relocate(js, ROOT).split("\n");
  equal(out[1], `const u = new URL('./kernel.bin', "${ROOT.href}src/kernel/image.ts");`);
  equal(
    out[3],
    `const w = new URL('./w.ts', "${ROOT.href}src/vm/hostsignals.ts"); if (false) f();`,
  );
  equal(out[4], 'const { x } = await import(String("./analyze-AB12.js"));');
  equal(out[5], 'import("node:dns/promises");');
  throws(() => relocate("const u = import.meta.url;", ROOT), /outside a module/);
  throws(() => relocate("// src/a.ts\nimport.meta.resolve('x')", ROOT), /import\.meta left/);
});
