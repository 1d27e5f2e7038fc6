/**
 * The objects a dynamic executable runs with: its interpreter (`PT_INTERP`)
 * and every `DT_NEEDED` library, recursively, found the way ld.so finds
 * them (`DT_RPATH`, the library path, `DT_RUNPATH`, then the default
 * directories), through the guest's mount table when one is given, else on
 * the host. `/etc/ld.so.cache` is not read: on Debian the default
 * directories include the multiarch ones it would point to.
 * @module
 */
import { dirname, resolve } from "node:path";
import { ElfError, type ElfFile, parseElf } from "../loader/elf.ts";
import { type ElfDynamic, readDynamic } from "../loader/sections.ts";
import { type MountTable, openBeneath } from "../vfs/mounts.ts";
import { hostSyscall } from "../syscalls/host.ts";
import { SyscallError } from "../syscalls/errno.ts";

/** Where ld.so looks last, in order. */
export const DEFAULT_LIBRARY_DIRS: readonly string[] = [
  "/lib/x86_64-linux-gnu",
  "/usr/lib/x86_64-linux-gnu",
  "/lib64",
  "/lib",
  "/usr/lib",
];

/** Names musl's loader answers with itself (its libc provides them all). */
const MUSL_BUILTIN = /^lib(c|dl|m|pthread|rt|util|xnet|resolv|crypt)\.so(\.|$)/;

/** One ELF object of a program. */
export interface ObjectFile {
  /** Its path: as given for the executable, else as found (a guest path under mounts). */
  path: string;
  /** How it came in. */
  role: "executable" | "interpreter" | "library";
  /** The name a `DT_NEEDED` entry gave (libraries only). */
  needed?: string;
  /** Path of the object that needed it first (libraries only). */
  neededBy?: string;
  /** The whole file. */
  bytes: Uint8Array;
  /** The file, parsed. */
  elf: ElfFile;
  /** Its dynamic section, if it has one. */
  dynamic?: ElfDynamic;
  /** Identity of the file and its contents (device, inode, size, a hash), for caches. */
  key: string;
}

/** A library that was named but not found. */
export interface MissingObject {
  /** The `DT_NEEDED` name, or the interpreter's path. */
  name: string;
  /** The object that needed it. */
  neededBy: string;
  /** Why it was not found. */
  reason: string;
}

/** How to find the objects. */
export interface FindOptions {
  /** Read libraries through these mounts (the guest's view); default: the host. */
  mounts?: MountTable;
  /** Directory relative names are resolved against (default `/`). */
  cwd?: string;
  /** Directories searched like `LD_LIBRARY_PATH`. */
  libraryPath?: readonly string[];
  /** Whether to follow the interpreter and libraries (default true). */
  follow?: boolean;
}

/** The objects found, the executable first. */
export interface ObjectSet {
  /** The executable, its interpreter, then libraries in breadth-first order. */
  objects: ObjectFile[];
  /** Libraries (or the interpreter) that were named but not found. */
  missing: MissingObject[];
}

interface RawFile {
  bytes: Uint8Array;
  key: string;
  path: string;
}

/** FNV-1a over the whole file: a file rewritten in place is never taken for its old self. */
function contentHash(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return (h >>> 0).toString(16);
}

function fileKey(st: Deno.FileInfo, bytes: Uint8Array): string {
  return `${st.dev}:${st.ino}:${bytes.length}:${contentHash(bytes)}`;
}

/** Reads a host file; undefined if it is missing or not a regular file. */
function readHost(path: string): RawFile | undefined {
  try {
    const st = Deno.statSync(path);
    if (!st.isFile) return undefined;
    const bytes = Deno.readFileSync(path);
    return { bytes, key: fileKey(st, bytes), path };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    throw e;
  }
}

/** Reads a guest file through the mounts; undefined if it is not there. */
function readGuest(mounts: MountTable, path: string, cwd: string): RawFile | undefined {
  let fd = -1;
  try {
    const r = mounts.resolve(path, cwd);
    if (!r.mount) return undefined;
    fd = openBeneath(r.mount.rootFd, r.rel, 0); // O_RDONLY
    const st = Deno.statSync(`/proc/self/fd/${fd}`);
    if (!st.isFile) return undefined;
    const bytes = Deno.readFileSync(`/proc/self/fd/${fd}`);
    return { bytes, key: fileKey(st, bytes), path: r.guest };
  } catch (e) {
    if (e instanceof SyscallError) return undefined;
    throw e;
  } finally {
    if (fd >= 0) hostSyscall(3, fd); // close
  }
}

/** Reads the executable from the host, with the CLI's wording for errors. */
function readExecutable(path: string): RawFile {
  try {
    const st = Deno.statSync(path);
    if (st.isDirectory) throw new Error(`hermitux: ${path}: is a directory`);
    const bytes = Deno.readFileSync(path);
    return { bytes, key: fileKey(st, bytes), path };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new Error(`hermitux: ${path}: no such file`);
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new Error(`hermitux: ${path}: permission denied`);
    }
    throw e;
  }
}

/** Expands `$ORIGIN`, `$LIB` and `$PLATFORM` in a search path entry. */
function expand(dir: string, origin: string): string {
  return dir.replace(/\$(\{ORIGIN\}|ORIGIN)/g, origin)
    .replace(/\$(\{LIB\}|LIB)/g, "lib/x86_64-linux-gnu")
    .replace(/\$(\{PLATFORM\}|PLATFORM)/g, "x86_64");
}

function splitPath(list: string | undefined, origin: string): string[] {
  if (list === undefined) return [];
  return list.split(":").map((d) => expand(d === "" ? "." : d, origin));
}

/**
 * Finds the executable at host path `path` and, unless told not to, its
 * interpreter and every library it needs.
 *
 * @param path Host path of the executable.
 * @param options Where and how to look.
 * @returns The objects, and the names that could not be found.
 * @throws {ElfError} If the executable itself is not a valid x86-64 ELF.
 * @throws {Error} `hermitux: PATH: no such file` and the like.
 */
export function findObjects(path: string, options: FindOptions = {}): ObjectSet {
  const cwd = options.cwd ?? "/";
  const read = (p: string) =>
    options.mounts ? readGuest(options.mounts, p, cwd) : readHost(resolve(cwd, p));
  const raw = readExecutable(resolve(cwd, path));
  const elf = parseElf(raw.bytes, path);
  const exe: ObjectFile = {
    path,
    role: "executable",
    bytes: raw.bytes,
    elf,
    key: raw.key,
    ...dynamicOf(raw.bytes, elf),
  };
  const objects = [exe];
  const missing: MissingObject[] = [];
  if (options.follow === false) return { objects, missing };
  const known = new Map<string, ObjectFile>([[raw.key, exe]]);

  /** Reads and parses a candidate; undefined if absent or not a usable x86-64 object. */
  const load = (p: string): ObjectFile | RawFile | undefined => {
    const file = read(p);
    if (file === undefined) return undefined;
    const seen = known.get(file.key);
    if (seen) return seen;
    try {
      parseElf(file.bytes, file.path);
    } catch (e) {
      if (e instanceof ElfError) return undefined; // ld.so skips incompatible files
      throw e;
    }
    return file;
  };
  const add = (file: RawFile, role: ObjectFile["role"], extra: Partial<ObjectFile>) => {
    const parsed = parseElf(file.bytes, file.path);
    const obj: ObjectFile = {
      path: file.path,
      role,
      bytes: file.bytes,
      elf: parsed,
      key: file.key,
      ...dynamicOf(file.bytes, parsed),
      ...extra,
    };
    known.set(file.key, obj);
    objects.push(obj);
    return obj;
  };

  let interp: ObjectFile | undefined;
  if (elf.interpreter !== undefined) {
    const found = load(elf.interpreter);
    if (found === undefined) {
      missing.push({ name: elf.interpreter, neededBy: path, reason: "not found" });
    } else {
      interp = "role" in found ? found : add(found, "interpreter", {});
    }
  }
  const isMusl = interp !== undefined && /(^|\/)ld-musl-/.test(elf.interpreter!);

  const queue: ObjectFile[] = [exe];
  while (queue.length > 0) {
    const obj = queue.shift()!;
    const origin = obj.role === "executable" ? dirname(resolve(cwd, path)) : dirname(obj.path);
    for (const name of obj.dynamic?.needed ?? []) {
      if (isMusl && MUSL_BUILTIN.test(name)) continue; // the interpreter is libc
      if (objects.some((o) => o.dynamic?.soname === name || o.needed === name)) continue;
      let found: ObjectFile | RawFile | undefined;
      if (name.includes("/")) {
        found = load(expand(name, origin));
      } else {
        const dyn = obj.dynamic!;
        const dirs = [
          ...(dyn.runpath === undefined
            ? [...splitPath(dyn.rpath, origin), ...splitPath(exe.dynamic?.rpath, origin)]
            : []),
          ...(options.libraryPath ?? []),
          ...splitPath(dyn.runpath, origin),
          ...DEFAULT_LIBRARY_DIRS,
        ];
        for (const dir of dirs) {
          found = load(`${dir.replace(/\/$/, "")}/${name}`);
          if (found) break;
        }
      }
      if (found === undefined) {
        missing.push({ name, neededBy: obj.path, reason: "not found" });
      } else if (!("role" in found)) {
        queue.push(add(found, "library", { needed: name, neededBy: obj.path }));
      }
    }
  }
  return { objects, missing };
}

function dynamicOf(bytes: Uint8Array, elf: ElfFile): { dynamic?: ElfDynamic } {
  try {
    const dynamic = readDynamic(bytes, elf);
    return dynamic === undefined ? {} : { dynamic };
  } catch (e) {
    if (e instanceof ElfError) return {}; // a broken dynamic section: analyse the code anyway
    throw e;
  }
}
