/**
 * The CLI's code loaded as a bundle: Deno's loader takes ~25 ms over the
 * CLI's ~125 TypeScript modules (each kept with an inline source map) and
 * ~7 ms over the same code bundled by `deno bundle` (docs/STARTUP.md).
 *
 * A checkout's bundle lives in the cache (`cacheDir()/cli/<checkout>`) with
 * a manifest of every module it was made from (path, size, mtime). A run
 * loads it only when each of those files is as it was; otherwise it loads
 * the sources, as before, and starts a process of its own in the
 * background that makes a new bundle for the runs after it. Each build
 * goes into a folder of its own and the manifest is replaced last, so a
 * run never loads half of one. `HERMITUX_BUNDLE=0` (or a cache turned
 * off) always loads the sources; so does a copy not on the file system.
 *
 * In the bundle, `import.meta.url` of each module is replaced by its
 * source file's URL: the kernel image, its map and the signal worker are
 * found next to the sources, as without a bundle.
 * @module
 */
import { cacheDir, cacheHash, writeCacheFile } from "../cachedir.ts";

/** Bumped when a build's layout or the manifest changes. */
const VERSION = 1;
/** A build in progress holds a lock younger than this (ms). */
const LOCK_MS = 120_000;
/** Builds older than this (ms), other than the newest, are removed. */
const KEEP_MS = 3_600_000;

type Entry = [path: string, size: number, mtime: number];
interface Manifest {
  version: number;
  deno: string;
  build: string;
  files: Entry[];
}

/** The CLI's entry module (src/cli/main.ts). */
export type CliModule = typeof import("./main.ts");

/** The CLI's code and where it came from (for `run --verbose`). */
export interface LoadedCli {
  /** The module. */
  cli: CliModule;
  /** "the bundle DIR", or "the sources" and why. */
  from: string;
}

/** The folder of the bundles of the checkout at `root`, or undefined. */
export function bundleDir(root: URL, base: string | undefined = cacheDir()): string | undefined {
  if (!base || root.protocol !== "file:") return undefined;
  return `${base}/cli/${cacheHash(`${root.href}\0${Deno.version.deno}`)}`;
}

/** The build in `dir` whose sources are unchanged, or undefined. */
export function freshBuild(dir: string): string | undefined {
  let m: Manifest;
  try {
    m = JSON.parse(Deno.readTextFileSync(`${dir}/manifest.json`));
  } catch {
    return undefined;
  }
  if (
    m?.version !== VERSION || m.deno !== Deno.version.deno || typeof m.build !== "string" ||
    !/^b-[0-9a-z-]+$/.test(m.build) || !Array.isArray(m.files) || !m.files.length
  ) return undefined;
  for (const [path, size, mtime] of m.files) {
    try {
      const st = Deno.statSync(path);
      if (st.size !== size || st.mtime?.getTime() !== mtime) return undefined;
    } catch {
      return undefined;
    }
  }
  return `${dir}/${m.build}`;
}

/** Deno (not Node with the npm package's shim), and no `HERMITUX_BUNDLE=0`. */
function bundleWanted(): boolean {
  try {
    return !!globalThis.navigator?.userAgent?.startsWith("Deno/") &&
      Deno.env.get("HERMITUX_BUNDLE") !== "0";
  } catch {
    return false;
  }
}

/**
 * The CLI's code: the bundle of the checkout at `root` when it is fresh,
 * else the sources (and a bundle is made in the background for the next
 * run).
 */
export async function loadCli(root: URL): Promise<LoadedCli> {
  const dir = bundleWanted() ? bundleDir(root) : undefined;
  let why = dir ? "" : " (no bundle: off, no cache, or not a checkout)";
  if (dir) {
    const build = freshBuild(dir);
    if (build) {
      try {
        return { cli: await import(`file://${build}/main.js`), from: `the bundle ${build}` };
      } catch { /* a build removed under us: the sources */ }
    }
    why = startBuild(root, dir)
      ? " (a bundle is being made for the next runs)"
      : " (a bundle is being made by another run)";
  }
  // Not a literal: Deno would load the sources' whole graph at start-up.
  // (The npm package is this code compiled to .js.)
  const sources = import.meta.url.endsWith(".ts") ? "./main.ts" : "./main.js";
  return { cli: await import(sources), from: `the sources${why}` };
}

/** Starts a background build unless one is under way (false then). */
function startBuild(root: URL, dir: string): boolean {
  try {
    if (Date.now() - (Deno.statSync(`${dir}/lock`).mtime?.getTime() ?? 0) < LOCK_MS) return false;
  } catch { /* no lock */ }
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--no-lock",
        decodeURIComponent(new URL(import.meta.url).pathname),
        "--build",
        root.href,
        dir,
      ],
      cwd: decodeURIComponent(root.pathname),
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    child.unref();
  } catch { /* no bundle this time */ }
  return true;
}

/** Takes the lock of `dir`; false when another build holds it. */
function lock(dir: string): boolean {
  Deno.mkdirSync(dir, { recursive: true });
  const path = `${dir}/lock`;
  for (let i = 0; i < 2; i++) {
    try {
      Deno.openSync(path, { write: true, createNew: true }).close();
      return true;
    } catch {
      try {
        if (Date.now() - (Deno.statSync(path).mtime?.getTime() ?? 0) < LOCK_MS) return false;
        Deno.removeSync(path);
      } catch { /* taken and dropped meanwhile: try again */ }
    }
  }
  return false;
}

async function deno(args: string[], cwd: string): Promise<string> {
  const r = await new Deno.Command(Deno.execPath(), { args, cwd, stdin: "null" }).output();
  if (!r.success) {
    throw new Error(`deno ${args[0]}: ${new TextDecoder().decode(r.stderr).slice(-500)}`);
  }
  return new TextDecoder().decode(r.stdout);
}

/**
 * Each module's `import.meta.url` in esbuild's output (`// path` before each
 * module's code, relative to `root`) replaced by its source's URL; and
 * `import.meta.main`, false in a bundled module; dynamic imports of chunks
 * made opaque to Deno's start-up. Throws where a module is
 * not known or another use of `import.meta` is left.
 */
export function relocate(js: string, root: URL): string {
  let url: string | undefined;
  const out = js.split("\n").map((line) => {
    const m = /^\/\/ (\S+\.[jt]sx?)$/.exec(line);
    if (m) url = new URL(m[1], root).href;
    // Deno loads every literal dynamic import's graph at start-up; the
    // chunks of --analyze, --gdb or --profile are loaded when used.
    line = line.replace(/\bimport\((["'])(\.\/[\w.-]+\.js)\1\)/g, "import(String($1$2$1))");
    if (!line.includes("import.meta")) return line;
    if (line.includes("import.meta.url")) {
      if (!url) throw new Error("import.meta.url outside a module's code");
      line = line.replaceAll("import.meta.url", JSON.stringify(url));
    }
    line = line.replaceAll("import.meta.main", "false");
    if (line.includes("import.meta")) throw new Error(`import.meta left: ${line.trim()}`);
    return line;
  });
  return out.join("\n");
}

/** Makes a bundle of the checkout at `root` into `dir` (the background process). */
export async function build(root: URL, dir: string): Promise<void> {
  if (!lock(dir)) return;
  const cwd = decodeURIComponent(root.pathname);
  const name = `b-${Date.now().toString(36)}-${Deno.pid}`;
  const out = `${dir}/${name}`;
  try {
    const info = JSON.parse(await deno(["info", "--json", "--no-lock", "src/cli/main.ts"], cwd));
    const files: Entry[] = [];
    for (const m of info.modules as { kind?: string; specifier: string; local?: string }[]) {
      if (m.kind !== "esm" || !m.specifier.startsWith(root.href) || !m.local) continue;
      if (m.local.includes("/node_modules/")) continue;
      const st = Deno.statSync(m.local); // before bundling: an edit meanwhile makes it stale
      files.push([m.local, st.size, st.mtime?.getTime() ?? 0]);
    }
    if (!files.length) throw new Error("no modules found");
    await deno([
      "bundle",
      "--quiet",
      "--no-lock",
      "--platform=deno",
      "--external=npm:*",
      "--code-splitting",
      "--format=esm",
      `--outdir=${out}`,
      "src/cli/main.ts",
    ], cwd);
    for (const e of Deno.readDirSync(out)) {
      if (!e.isFile || !e.name.endsWith(".js")) continue;
      const path = `${out}/${e.name}`;
      Deno.writeTextFileSync(path, relocate(Deno.readTextFileSync(path), root));
    }
    Deno.statSync(`${out}/main.js`);
    const manifest: Manifest = { version: VERSION, deno: Deno.version.deno, build: name, files };
    writeCacheFile(`${dir}/manifest.json`, JSON.stringify(manifest));
    prune(dir, name);
  } catch (e) {
    try {
      Deno.removeSync(out, { recursive: true });
    } catch { /* never made */ }
    throw e;
  } finally {
    Deno.removeSync(`${dir}/lock`);
  }
}

/** Removes builds other than `keep` not touched for an hour (a run may still use one). */
function prune(dir: string, keep: string): void {
  for (const e of Deno.readDirSync(dir)) {
    if (!e.isDirectory || e.name === keep || !e.name.startsWith("b-")) continue;
    try {
      const st = Deno.statSync(`${dir}/${e.name}`);
      if (Date.now() - (st.mtime?.getTime() ?? 0) > KEEP_MS) {
        Deno.removeSync(`${dir}/${e.name}`, { recursive: true });
      }
    } catch { /* removed by another build */ }
  }
}

if (import.meta.main && Deno.args[0] === "--build") {
  await build(new URL(Deno.args[1]), Deno.args[2]);
}
