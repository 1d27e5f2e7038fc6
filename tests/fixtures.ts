// Test helpers: compile C fixtures (cached by content), run programs
// natively and under the hermitux CLI, and compare.
import { deepStrictEqual } from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;
const CACHE = Deno.env.get("HERMITUX_TEST_CACHE") ?? "/tmp/hermitux-test-cache";
const decoder = new TextDecoder();

/** The ways a test program is built. */
export const TOOLCHAINS = {
  "musl-static": { cc: "musl-gcc", flags: ["-static"] },
  "glibc-static": { cc: "gcc", flags: ["-static"] },
  "glibc-static-pie": { cc: "gcc", flags: ["-static-pie"] },
  "glibc-dynamic": { cc: "gcc", flags: [] },
  "musl-dynamic": { cc: "musl-gcc", flags: [] },
} as const;

/** A toolchain name. */
export type Toolchain = keyof typeof TOOLCHAINS;

async function hash(s: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s));
  return [...new Uint8Array(d)].slice(0, 12).map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Compiles source with `cc` and `flags`; returns the binary's path (cached).
 * `ext` tells the compiler the language (c, cpp, f90).
 */
export async function compileC(
  name: string,
  source: string,
  cc: string,
  flags: readonly string[],
  ext = "c",
): Promise<string> {
  await Deno.mkdir(CACHE, { recursive: true });
  const out = `${CACHE}/${name}-${await hash([cc, ...flags, source].join("\0"))}`;
  try {
    await Deno.stat(out);
    return out;
  } catch { /* not built yet */ }
  const src = `${out}.${ext}`;
  await Deno.writeTextFile(src, source);
  const tmp = `${out}.tmp${crypto.randomUUID()}`;
  const r = await new Deno.Command(cc, { args: ["-O2", "-g", ...flags, src, "-o", tmp] }).output();
  if (!r.success) throw new Error(`${cc} ${name}: ${decoder.decode(r.stderr)}`);
  await Deno.rename(tmp, out);
  return out;
}

/** Builds tests/c/NAME.c with a toolchain (tests/c/report.h and proc.h may be included). */
export async function fixture(name: string, tc: Toolchain): Promise<string> {
  const source = await Deno.readTextFile(`${ROOT}tests/c/${name}.c`);
  // The shared headers' text goes into the cache key: a changed header rebuilds.
  const header = (await Promise.all(
    ["report.h", "proc.h"].map((h) => Deno.readTextFile(`${ROOT}tests/c/${h}`)),
  )).join("");
  const { cc, flags } = TOOLCHAINS[tc];
  return compileC(`${name}-${tc}`, `// ${await hash(header)}\n${source}`, cc, [
    ...flags,
    `-I${ROOT}tests/c`,
  ]);
}

/** What a run produced. */
export interface Outcome {
  stdout: string;
  stderr: string;
  code: number;
}

/** Options for a run. */
export interface RunOptions {
  stdin?: Uint8Array | string;
  env?: Record<string, string>;
  cwd?: string;
}

async function spawn(cmd: string, args: string[], o: RunOptions): Promise<Outcome> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: o.cwd,
    env: o.env ?? {},
    clearEnv: true,
    stdin: o.stdin !== undefined ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Feed stdin while output is collected, or a large copy would deadlock.
  const feed = async () => {
    if (o.stdin === undefined) return;
    const w = child.stdin.getWriter();
    await w.write(typeof o.stdin === "string" ? new TextEncoder().encode(o.stdin) : o.stdin);
    await w.close();
  };
  const [r] = await Promise.all([child.output(), feed()]);
  return { stdout: decoder.decode(r.stdout), stderr: decoder.decode(r.stderr), code: r.code };
}

let launcher: Promise<string> | undefined;

/** tests/tools/native_exec: runs a program with only fds 0-2 open. */
function nativeExec(): Promise<string> {
  launcher ??= Deno.readTextFile(`${ROOT}tests/tools/native_exec.c`)
    .then((src) => compileC("native_exec", src, "gcc", []));
  return launcher;
}

/** Runs a program natively with exactly `env` and only fds 0-2 inherited. */
export async function runNative(
  bin: string,
  args: string[] = [],
  o: RunOptions = {},
): Promise<Outcome> {
  // env(1) keeps the variables in the given order, as hermitux does.
  const env = Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`);
  return spawn(await nativeExec(), ["/usr/bin/env", "-i", ...env, bin, ...args], {
    ...o,
    env: {},
  });
}

/**
 * The host command line of `hermitux run [flags] BIN ARGS` through cli.ts
 * (`env` is passed with --env), and the environment it needs.
 */
export function hermituxCommand(
  bin: string,
  args: string[] = [],
  o: RunOptions & { flags?: string[] } = {},
): { cmd: string; args: string[]; env: Record<string, string> } {
  const envFlags = Object.entries(o.env ?? {}).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
  // A guest that hangs fails its test instead of outliving the run (a
  // killed test process leaves its children behind, spinning exitless).
  const timeout = o.flags?.some((f) => f.startsWith("--timeout")) ? [] : ["--timeout", "300"];
  // HERMITUX_TEST_NODE=/path/to/node: the npm build's CLI under Node (deno task npm first).
  const node = Deno.env.get("HERMITUX_TEST_NODE");
  const cli = node
    ? { cmd: node, args: [`${ROOT}npm/dist/npm/bin/hermitux.js`] }
    : { cmd: Deno.execPath(), args: ["run", "-A", "--quiet", `${ROOT}cli.ts`] };
  return {
    cmd: cli.cmd,
    args: [
      ...cli.args,
      "run",
      ...timeout,
      ...envFlags,
      ...(o.flags ?? []),
      bin,
      ...args,
    ],
    env: PASSED,
  };
}

/** Runs `hermitux run [flags] BIN ARGS` through cli.ts; `env` is passed with --env. */
export function runHermitux(
  bin: string,
  args: string[] = [],
  o: RunOptions & { flags?: string[] } = {},
): Promise<Outcome> {
  const c = hermituxCommand(bin, args, o);
  return spawn(c.cmd, c.args, { ...o, env: c.env });
}

/**
 * `HERMITUX_REWRITE=lazy deno task test` runs every CLI test with syscall
 * rewriting, `HERMITUX_HOST_CALLS=exit` with the exit transport.
 */
const PASSED = Object.fromEntries(
  ["HERMITUX_REWRITE", "HERMITUX_HOST_CALLS", "HERMITUX_VFORK"].flatMap((k) => {
    const v = Deno.env.get(k);
    return v === undefined ? [] : [[k, v]];
  }),
);

/**
 * Runs natively and under hermitux (with `flags`, e.g. a grant);
 * asserts identical stdout, stderr, status.
 */
export async function assertSameAsNative(
  bin: string,
  args: string[] = [],
  o: RunOptions & { flags?: string[] } = {},
): Promise<Outcome> {
  const [native, vm] = await Promise.all([runNative(bin, args, o), runHermitux(bin, args, o)]);
  deepStrictEqual(vm, native);
  return vm;
}

/** Runs `f` in a fresh temporary directory (prefix `hermitux-NAME-`), removed afterwards. */
export async function inTempDir<T>(f: (dir: string) => Promise<T>, name = "test"): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: `hermitux-${name}-` });
  try {
    return await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
