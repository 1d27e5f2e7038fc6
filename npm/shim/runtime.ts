/**
 * Deno's runtime APIs that hermitux calls (files, the environment, process
 * facts, signals, timers), on Node's `node:fs`, `node:process` and
 * `node:os`: the subset it uses, with Deno's names, shapes and error
 * classes.
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
// Not `import process from "node:process"`: Node's ES module of it reads every
// property, `process.stdout` too, which puts a piped stdout in O_NONBLOCK, and
// a guest writing to the inherited fd would then get EAGAIN.
const process = (globalThis as unknown as { process: typeof import("node:process") }).process;

/** `Deno.errors`: the classes Node's error codes become. */
export const errors = {
  NotFound: class NotFound extends Error {},
  PermissionDenied: class PermissionDenied extends Error {},
  AlreadyExists: class AlreadyExists extends Error {},
  NotADirectory: class NotADirectory extends Error {},
  IsADirectory: class IsADirectory extends Error {},
  DirectoryNotEmpty: class DirectoryNotEmpty extends Error {},
  FilesystemLoop: class FilesystemLoop extends Error {},
  InvalidData: class InvalidData extends Error {},
  BadResource: class BadResource extends Error {},
  Interrupted: class Interrupted extends Error {},
  WouldBlock: class WouldBlock extends Error {},
  BrokenPipe: class BrokenPipe extends Error {},
  TimedOut: class TimedOut extends Error {},
  NotSupported: class NotSupported extends Error {},
};

const BY_CODE: Record<string, new (m: string) => Error> = {
  ENOENT: errors.NotFound,
  EACCES: errors.PermissionDenied,
  EPERM: errors.PermissionDenied,
  EEXIST: errors.AlreadyExists,
  ENOTDIR: errors.NotADirectory,
  EISDIR: errors.IsADirectory,
  ENOTEMPTY: errors.DirectoryNotEmpty,
  ELOOP: errors.FilesystemLoop,
  EBADF: errors.BadResource,
  EINTR: errors.Interrupted,
  EAGAIN: errors.WouldBlock,
  EPIPE: errors.BrokenPipe,
  ETIMEDOUT: errors.TimedOut,
  ENOTSUP: errors.NotSupported,
};

/** Node's error as Deno's class (its `code` kept), or unchanged. */
function denoError(e: unknown): unknown {
  const code = (e as { code?: string })?.code;
  const Class = code ? BY_CODE[code] : undefined;
  if (!Class) return e;
  const out = new Class((e as Error).message);
  Object.assign(out, { code, errno: (e as { errno?: number }).errno, cause: e });
  return out;
}

/** Runs `f`, throwing Deno's error class for Node's. */
function sync<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw denoError(e);
  }
}

/** Runs async `f`, rejecting with Deno's error class for Node's. */
async function async<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw denoError(e);
  }
}

/** `Deno.FileInfo` of Node's `Stats`. */
function fileInfo(s: fs.Stats) {
  return {
    isFile: s.isFile(),
    isDirectory: s.isDirectory(),
    isSymlink: s.isSymbolicLink(),
    isBlockDevice: s.isBlockDevice(),
    isCharDevice: s.isCharacterDevice(),
    isFifo: s.isFIFO(),
    isSocket: s.isSocket(),
    size: s.size,
    mtime: s.mtime,
    atime: s.atime,
    birthtime: s.birthtime,
    ctime: s.ctime,
    dev: s.dev,
    ino: s.ino,
    mode: s.mode,
    nlink: s.nlink,
    uid: s.uid,
    gid: s.gid,
    rdev: s.rdev,
    blksize: s.blksize,
    blocks: s.blocks,
  };
}

type PathLike = string | URL;

/** The writer `Deno.stdout`/`Deno.stderr` is, on a raw fd (not Node's streams). */
function writer(fd: number) {
  return {
    rid: fd,
    writeSync: (b: Uint8Array): number => sync(() => fs.writeSync(fd, b)),
    isTerminal: (): boolean => os.platform() === "linux" && fs.fstatSync(fd).isCharacterDevice(),
  };
}

/** The runtime part of the `Deno` namespace. */
export const runtime = {
  errors,
  build: { os: "linux", arch: "x86_64", target: "x86_64-unknown-linux-gnu" },
  pid: process.pid,
  ppid: process.ppid,
  args: process.argv.slice(2),
  noColor: !!process.env.NO_COLOR,
  uid: (): number | null => process.getuid?.() ?? null,
  gid: (): number | null => process.getgid?.() ?? null,
  cwd: (): string => process.cwd(),
  osRelease: (): string => os.release(),
  execPath: (): string => process.execPath,
  exit: (code?: number): never => process.exit(code),
  env: {
    get: (k: string): string | undefined => process.env[k],
    set: (k: string, v: string): void => void (process.env[k] = v),
    has: (k: string): boolean => k in process.env,
    delete: (k: string): void => void delete process.env[k],
    toObject: (): Record<string, string> => ({ ...process.env } as Record<string, string>),
  },
  stdout: writer(1),
  stderr: writer(2),
  addSignalListener: (sig: string, f: () => void): void => void process.on(sig, f),
  removeSignalListener: (sig: string, f: () => void): void => void process.off(sig, f),
  unrefTimer: (t: unknown): void => void (t as { unref?: () => void })?.unref?.(),
  refTimer: (t: unknown): void => void (t as { ref?: () => void })?.ref?.(),
  readFileSync: (p: PathLike): Uint8Array => sync(() => new Uint8Array(fs.readFileSync(p))),
  readTextFileSync: (p: PathLike): string => sync(() => fs.readFileSync(p, "utf8")),
  readFile: (p: PathLike): Promise<Uint8Array> =>
    async(async () => new Uint8Array(await fs.promises.readFile(p))),
  readTextFile: (p: PathLike): Promise<string> => async(() => fs.promises.readFile(p, "utf8")),
  writeFileSync: (p: PathLike, data: Uint8Array, o?: { mode?: number }): void =>
    sync(() => fs.writeFileSync(p, data, { mode: o?.mode })),
  writeTextFileSync: (p: PathLike, data: string): void => sync(() => fs.writeFileSync(p, data)),
  writeTextFile: (p: PathLike, data: string): Promise<void> =>
    async(() => fs.promises.writeFile(p, data)),
  statSync: (p: PathLike) => sync(() => fileInfo(fs.statSync(p))),
  lstatSync: (p: PathLike) => sync(() => fileInfo(fs.lstatSync(p))),
  realPathSync: (p: PathLike): string => sync(() => fs.realpathSync(p)),
  readLinkSync: (p: PathLike): string => sync(() => fs.readlinkSync(p)),
  readDirSync: (p: PathLike) =>
    sync(() =>
      fs.readdirSync(p, { withFileTypes: true }).map((e) => ({
        name: e.name,
        isFile: e.isFile(),
        isDirectory: e.isDirectory(),
        isSymlink: e.isSymbolicLink(),
      }))
    ),
  mkdirSync: (p: PathLike, o?: { recursive?: boolean; mode?: number }): void =>
    void sync(() => fs.mkdirSync(p, o)),
  renameSync: (from: PathLike, to: PathLike): void => sync(() => fs.renameSync(from, to)),
  chmodSync: (p: PathLike, mode: number): void => sync(() => fs.chmodSync(p, mode)),
  symlinkSync: (target: string, p: PathLike): void => sync(() => fs.symlinkSync(target, p)),
  removeSync: (p: PathLike, o?: { recursive?: boolean }): void =>
    sync(() => {
      if (o?.recursive) return fs.rmSync(p, { recursive: true });
      if (fs.lstatSync(p).isDirectory()) fs.rmdirSync(p);
      else fs.unlinkSync(p);
    }),
  makeTempDirSync: (o?: { dir?: string; prefix?: string }): string =>
    sync(() => fs.mkdtempSync(path.join(o?.dir ?? os.tmpdir(), o?.prefix ?? ""))),
};
