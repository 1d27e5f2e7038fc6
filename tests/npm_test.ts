// The npm package under Node, as a user gets it: tools/build_npm.ts builds
// it, `npm pack` packs it, the tarball is installed into a fresh directory,
// and there Node runs a hello and python3 through `import { boot } from
// "@hermitux/core"`, `npx hermitux run` works, and its declarations
// type-check. The tarball is cached by
// the content of what goes into it; npm's own cache makes the install of
// koffi and iced-x86 offline after the first run. Skipped (with a message)
// when neither the registry nor npm's cache has them.
import { equal, match } from "node:assert/strict";
import { fixture, inTempDir } from "./fixtures.ts";
import { buildNpm } from "../tools/build_npm.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const CACHE = Deno.env.get("HERMITUX_TEST_CACHE") ?? "/tmp/hermitux-test-cache";
const text = (b: Uint8Array) => new TextDecoder().decode(b);

async function run(cmd: string, args: string[], cwd: string) {
  const r = await new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "null",
    env: { NO_COLOR: "1" },
  })
    .output();
  return { code: r.code, stdout: text(r.stdout), stderr: text(r.stderr) };
}

/** Every file that goes into the package, for the cache key. */
function* inputs(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory && !["dist", ".stage", "node_modules"].includes(e.name)) {
      yield* inputs(p);
    } else if (e.isFile && !e.name.endsWith(".tgz")) yield p;
  }
}

async function packageHash(): Promise<string> {
  const files = [
    `${ROOT}mod.ts`,
    `${ROOT}cli.ts`,
    `${ROOT}tools/build_npm.ts`,
    ...inputs(`${ROOT}src`),
    ...inputs(`${ROOT}npm`),
  ].filter((f) => !f.endsWith("npm/package.json") && !f.endsWith("npm/LICENSE"))
    .sort();
  const h = await crypto.subtle.digest(
    "SHA-256",
    new Uint8Array((await Promise.all(files.map(async (f) => [
      ...new TextEncoder().encode(f),
      ...await Deno.readFile(f),
    ]))).flat()),
  );
  return [...new Uint8Array(h)].slice(0, 12).map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The packed tarball: built and packed once per content. */
async function tarball(): Promise<string> {
  const dir = `${CACHE}/npm-${await packageHash()}`;
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (e.name.endsWith(".tgz")) return `${dir}/${e.name}`;
    }
  } catch { /* not built yet */ }
  const npm = await buildNpm();
  const tmp = `${dir}.tmp${crypto.randomUUID()}`;
  await Deno.mkdir(tmp, { recursive: true });
  const p = await run("npm", ["pack", "--pack-destination", tmp], npm);
  equal(p.code, 0, p.stderr);
  await Deno.rename(tmp, dir).catch(() => Deno.remove(tmp, { recursive: true }));
  return `${dir}/${p.stdout.trim().split("\n").at(-1)}`;
}

const NETWORK = /ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNREFUSED|ECONNRESET|ENETUNREACH|ENOTCACHED/;

Deno.test("npm package: boot() and npx hermitux under Node", async () => {
  const hello = await fixture("hello", "musl-static");
  const cat = await fixture("cat", "musl-static");
  const tgz = await tarball();
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/package.json`,
      '{ "private": true, "type": "module" }\n',
    );
    const i = await run(
      "npm",
      [
        "install",
        "--no-audit",
        "--no-fund",
        "--prefer-offline",
        "--no-package-lock",
        tgz,
      ],
      dir,
    );
    if (i.code !== 0 && NETWORK.test(i.stderr)) {
      console.log(
        `skipped: the npm registry is unreachable (${i.stderr.match(NETWORK)![0]})`,
      );
      return;
    }
    equal(i.code, 0, i.stderr);

    // The library: a static hello, its output inherited.
    await Deno.writeTextFile(
      `${dir}/hello.js`,
      `import { boot } from "@hermitux/core";\n` +
        `const r = await boot({ path: ${JSON.stringify(hello)}, args: ["x"] });\n` +
        `console.log("status", r.status, typeof process.versions.node);\n`,
    );
    const h = await run("node", ["hello.js"], dir);
    equal(h.code, 0, h.stderr);
    equal(h.stdout, "hello, world\nstatus 0 string\n");

    // A script that printed first (Node's process.stdout on a pipe) and a guest writing
    // 300,000 bytes to the inherited pipe, read late: the guest's writes wait, as natively.
    await Deno.writeTextFile(
      `${dir}/cat.js`,
      `import { boot } from "@hermitux/core";\n` +
        `console.log("first");\n` +
        `const r = await boot({ path: ${JSON.stringify(cat)}, stdin: new Uint8Array(300000) });\n` +
        `console.error("status", r.status);\n`,
    );
    const slow = await run("sh", ["-c", "node cat.js | (sleep 1; wc -c)"], dir);
    equal(slow.code, 0, slow.stderr);
    equal(slow.stdout.trim(), "300006");
    match(slow.stderr, /300000 bytes\nstatus 0\n$/);

    // python3 with the host's / mounted read-only, its stdout piped back to the script.
    await Deno.writeTextFile(
      `${dir}/python.js`,
      `import { boot } from "@hermitux/core";\n` +
        `const r = await boot({ path: "/usr/bin/python3", args: ["-c", "print(6*7)"],\n` +
        `  mounts: [{ host: "/", guest: "/", readOnly: true }], stdout: "piped" });\n` +
        `console.log(JSON.stringify(new TextDecoder().decode(r.stdout)), r.status);\n`,
    );
    const py = await run("node", ["python.js"], dir);
    equal(py.code, 0, py.stderr);
    equal(py.stdout, '"42\\n" 0\n');

    // The host probe under Node: measured, cached in HERMITUX_CACHE_DIR, said by --verbose.
    const probe = await run("sh", [
      "-c",
      `HERMITUX_CACHE_DIR=${dir}/cache npx --no hermitux run --verbose ${hello}`,
    ], dir);
    equal(probe.code, 0, probe.stderr);
    match(probe.stderr, /host calls \w+ \(measured on this host: an exit [\d.]+ µs, .* cached in /);

    // The command: npx finds the package's bin.
    const l = await run("npx", [
      "--no",
      "hermitux",
      "run",
      "/sbin/ldconfig",
      "--version",
    ], dir);
    equal(l.code, 0, l.stderr);
    match(l.stdout, /^ldconfig \(.*GLIBC.*\)/);
    const c = await run("npx", ["--no", "hermitux", "run", hello, "a"], dir);
    equal(c.code, 0, c.stderr);
    equal(c.stdout, "hello, world\n");
    const s = await run("npx", [
      "--no",
      "hermitux",
      "run",
      "/bin/sh",
      "-c",
      "exit 7",
    ], dir);
    equal(s.code, 7, s.stderr);

    // Its declarations type-check in a strict TypeScript project (the checkout's tsc).
    await Deno.writeTextFile(
      `${dir}/typed.ts`,
      `import { boot, type RunResult } from "@hermitux/core";\n` +
        `import { main } from "@hermitux/core/cli";\n` +
        `const r: RunResult = await boot({ path: "/x", stdout: "piped" });\n` +
        `const status: number = r.status;\n` +
        `export const used = [status, main];\n`,
    );
    const t = await run("node", [
      `${ROOT}node_modules/typescript/bin/tsc`,
      ...["--noEmit", "--strict", "--module", "nodenext", "--target", "es2022"],
      ...["--typeRoots", `${ROOT}node_modules/@types`, "--types", "node", "typed.ts"],
    ], dir);
    equal(t.code, 0, t.stdout + t.stderr);
  }, "npm");
});
