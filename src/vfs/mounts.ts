/**
 * The guest's view of the file system: a mount table mapping guest paths to
 * host directories, read-only or read-write. Every path the guest names is
 * resolved here, component by component, in the guest's namespace: `..`
 * and symlinks (absolute ones restart at the guest root) never leave it.
 * The final host operation then runs with `openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS)` from the mount's root, so a host-side race cannot
 * escape either: it can only fail.
 * @module
 */
import { E, SyscallError } from "../syscalls/errno.ts";
import { bufferAddress, hostSyscall } from "../syscalls/host.ts";
import { absolute, components, normalize, pathToCString } from "./path.ts";

const NR = { close: 3, newfstatat: 262, readlinkat: 267, openat2: 437, open: 2 } as const;
const O_PATH = 0o10000000, O_DIRECTORY = 0o200000, O_CLOEXEC = 0o2000000, O_NOFOLLOW = 0o400000;
const RESOLVE_NO_MAGICLINKS = 2, RESOLVE_NO_SYMLINKS = 4, RESOLVE_BENEATH = 8;
const AT_SYMLINK_NOFOLLOW = 0x100;
const S_IFMT = 0o170000, S_IFDIR = 0o040000, S_IFLNK = 0o120000;
const MAX_SYMLINKS = 40;

/** One mount: a host directory seen at a guest path. */
export interface MountSpec {
  /**
   * Host directory, or `":memory:"` for a private in-memory file system
   * (a fresh directory on the host's tmpfs, removed with the mount table).
   */
  host: string;
  /** Absolute guest path where it appears. */
  guest: string;
  /** Whether the guest may change it. */
  readOnly: boolean;
  /**
   * For `":memory:"`: what it holds from the start (a synthesized
   * directory, e.g. the CLI's default /etc), made before the guest first
   * looks there; a function is called then, once per mount table.
   */
  files?: readonly MemoryFile[] | (() => readonly MemoryFile[]);
}

/** One entry made in an in-memory file system before the guest runs. */
export interface MemoryFile {
  /** Path below the mount, e.g. `"ssl/openssl.cnf"`; parent directories are made. */
  path: string;
  /** A regular file's bytes. */
  data?: Uint8Array;
  /** A symbolic link's target, as given. */
  link?: string;
  /** Permission bits (default 0o644 for a file, 0o755 for a directory). */
  mode?: number;
}

/** A mount with its host directory open. */
export interface Mount extends Readonly<MountSpec> {
  /** O_PATH fd of the host directory: every lookup starts here. */
  readonly rootFd: number;
}

/** Where a guest path lands: a mount and the path below its root. */
export interface Resolved {
  /** The guest path, with every symlink resolved (except a kept final one). */
  readonly guest: string;
  /** The mount that holds it, or undefined for a directory that only leads to mounts. */
  readonly mount?: Mount;
  /** Path below the mount root, "" for the root itself; no "..", no symlinks. */
  readonly rel: string;
}

function check(r: bigint): number {
  if (r < 0n) throw new SyscallError(Number(-r));
  return Number(r);
}

const EAGAIN = 11;

/** One openat2 below `dirFd` with no symlink followed: an fd, or -errno. */
function openat2Beneath(dirFd: number, rel: string, flags: number, mode = 0): bigint {
  const how = new BigUint64Array([
    BigInt(flags | O_CLOEXEC),
    BigInt(mode),
    BigInt(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS),
  ]);
  const path = pathToCString(rel === "" ? "." : rel);
  return hostSyscall(
    NR.openat2,
    dirFd,
    bufferAddress(path),
    bufferAddress(new Uint8Array(how.buffer)),
    24,
  );
}

/** The host's openat2 below `dirFd`, never following a symlink or leaving it. */
export function openBeneath(dirFd: number, rel: string, flags: number, mode = 0): number {
  for (let attempt = 0;; attempt++) {
    const r = openat2Beneath(dirFd, rel, flags, mode);
    // RESOLVE_BENEATH fails with EAGAIN when a rename or mount anywhere on
    // the host raced with the walk: that is not the guest's error, retry.
    if (r !== BigInt(-EAGAIN) || attempt === 100) return check(r);
  }
}

/**
 * ENOENT for a name in a directory that only leads to mount points: it
 * names nothing, and nothing can be made there. Calls that make or remove
 * a name turn it into EROFS, as Linux does for a read-only file system
 * before it looks the name up.
 */
export class OutsideMounts extends SyscallError {
  constructor() {
    super(E.ENOENT);
  }
}

/** `MountSpec.host` of an in-memory file system. */
export const MEMORY = ":memory:";

/** Where in-memory file systems live: the host's tmpfs when it has one. */
function memoryRoot(): string {
  try {
    if (Deno.statSync("/dev/shm").isDirectory) return "/dev/shm";
  } catch { /* no /dev/shm */ }
  return Deno.env.get("TMPDIR") ?? "/tmp";
}

/** The guest's mounts, longest guest path first. */
export class MountTable {
  #mounts: Mount[] = [];
  #scratch: string[] = [];
  /** Where the directories standing for virtual ones are made (openVirtual). */
  #views?: string;
  /** The ones made so far. */
  #made = new Set<string>();
  /** In-memory mounts not made yet (see #memory): they have no fd to close. */
  #unmade = new Set<Mount>();
  /** Processes that use this table (fork shares it); the last close closes it. */
  #users = 1;

  /** Opens each host directory; throws a clear error for a bad one. */
  constructor(specs: readonly MountSpec[] = []) {
    for (const s of specs) this.add(s);
  }

  /** One more process uses the table: it closes with the last {@linkcode close}. */
  share(): this {
    this.#users++;
    return this;
  }

  /** Adds a mount (a later mount at the same guest path replaces the earlier). */
  add(spec: MountSpec): void {
    const guest = normalize(spec.guest);
    const mount = spec.host === MEMORY
      ? this.#memory(spec, guest)
      : { ...spec, guest, rootFd: openRoot(spec.host) };
    const old = this.#mounts.findIndex((m) => m.guest === guest);
    if (old >= 0) {
      const gone = this.#mounts.splice(old, 1)[0];
      if (!this.#unmade.has(gone)) hostSyscall(NR.close, gone.rootFd);
    }
    this.#mounts.push(mount);
    this.#mounts.sort((a, b) => b.guest.length - a.guest.length);
  }

  /**
   * An in-memory file system, made on the host's tmpfs when something first
   * needs its root fd: a run that never looks there (a static hello and the
   * CLI's /etc and /dev/shm) makes no directory and writes no file, ~6 ms of
   * the CLI's start-up. The paths of `files` are checked now.
   */
  #memory(spec: MountSpec, guest: string): Mount {
    if (Array.isArray(spec.files)) { for (const f of spec.files) checkedParts(f.path); }
    let dir: string | undefined, fd = -1;
    const make = () => {
      dir = Deno.makeTempDirSync({ dir: memoryRoot(), prefix: "hermitux-memfs-" });
      this.#scratch.push(dir);
      const files = typeof spec.files === "function" ? spec.files() : spec.files;
      if (files) fill(dir, files);
      fd = openRoot(dir);
      this.#unmade.delete(mount);
    };
    const mount: Mount = {
      ...spec,
      guest,
      get host() {
        if (!dir) make();
        return dir!;
      },
      get rootFd() {
        if (fd < 0) make();
        return fd;
      },
    };
    this.#unmade.add(mount);
    return mount;
  }

  /** The mounts, longest guest path first. */
  get mounts(): readonly Mount[] {
    return this.#mounts;
  }

  /** The mount holding guest path `path` (normalised), if any. */
  mountFor(path: string): Mount | undefined {
    return this.#mounts.find((m) =>
      m.guest === "/" || path === m.guest || path.startsWith(m.guest + "/")
    );
  }

  /**
   * The names in `path`, a directory that only leads to mount points: the
   * next component of each mount below it.
   */
  childrenOf(path: string): string[] {
    const prefix = path === "/" ? "/" : path + "/";
    const names = new Set<string>();
    for (const m of this.#mounts) {
      if (m.guest.startsWith(prefix) && m.guest !== path) {
        names.add(m.guest.slice(prefix.length).split("/")[0]);
      }
    }
    return [...names].sort();
  }

  /**
   * A read-only fd for `path`, a directory that only leads to mount points:
   * a host directory made for it, holding an empty directory for each of
   * {@linkcode MountTable.childrenOf}, so that `getdents64` lists them
   * (`ls /` shows the mounts' top directories).
   */
  openVirtual(path: string, flags: number): number {
    return check(
      hostSyscall(
        NR.open,
        bufferAddress(pathToCString(this.viewOf(path))),
        flags | O_DIRECTORY | O_CLOEXEC,
      ),
    );
  }

  /**
   * The host directory standing for `path`, a directory that only leads to
   * mount points (made on first use): what `openVirtual` opens, and what
   * `stat` of `path` describes, so that its inode is its own and the same
   * either way (`find` compares them).
   */
  viewOf(path: string): string {
    if (!this.#views) {
      this.#views = Deno.makeTempDirSync({ dir: memoryRoot(), prefix: "hermitux-view-" });
      this.#scratch.push(this.#views);
    }
    const dir = `${this.#views}/${encodeURIComponent(path)}`;
    if (this.#made.has(dir)) return dir;
    Deno.mkdirSync(dir);
    for (const name of this.childrenOf(path)) Deno.mkdirSync(`${dir}/${name}`, { mode: 0o555 });
    Deno.chmodSync(dir, 0o555);
    this.#made.add(dir);
    return dir;
  }

  /** Whether `path` is a directory on the way to some mount point. */
  leadsToMount(path: string): boolean {
    const prefix = path === "/" ? "/" : path + "/";
    return this.#mounts.some((m) => m.guest.startsWith(prefix));
  }

  /**
   * Resolves `path` (absolute, or relative to `cwd`) in the guest's view.
   * The final component may not exist (for creation); any earlier one must
   * be a directory. With `followLast` false, a final symlink is kept.
   */
  resolve(path: string, cwd: string, followLast = true): Resolved {
    if (path === "") throw new SyscallError(E.ENOENT);
    if (path.length >= 4096) throw new SyscallError(E.ENAMETOOLONG);
    const fast = this.#resolveWhole(path, cwd, followLast);
    if (fast) return fast;
    let queue = components(path);
    const stack = path.startsWith("/") ? [] : components(cwd);
    let links = 0;
    let last = this.#locate(absolute(stack));
    while (queue.length) {
      const c = queue.shift()!;
      if (c === ".") continue;
      if (c === "..") {
        stack.pop();
        last = this.#locate(absolute(stack));
        continue;
      }
      if (c.length > 255) throw new SyscallError(E.ENAMETOOLONG);
      const guest = absolute([...stack, c]);
      const here = this.#locate(guest);
      const final = queue.length === 0;
      if (!here.mount) {
        if (!this.leadsToMount(guest)) {
          throw final ? new OutsideMounts() : new SyscallError(E.ENOENT);
        }
        stack.push(c);
        last = here;
        continue;
      }
      const mode = this.#lstatMode(here);
      if (mode === undefined) {
        if (this.leadsToMount(guest)) {
          // Missing in its mount, but on the way to another mount (see #resolveWhole).
          stack.push(c);
          last = { guest, rel: "" };
          continue;
        }
        if (!final) throw new SyscallError(E.ENOENT);
        return here; // does not exist (yet)
      }
      if ((mode & S_IFMT) === S_IFLNK && (!final || followLast)) {
        if (++links > MAX_SYMLINKS) throw new SyscallError(E.ELOOP);
        const target = this.#readlink(here);
        if (target.startsWith("/")) stack.length = 0;
        queue = [...components(target), ...queue];
        if (queue.length === 0) last = this.#locate(absolute(stack));
        continue;
      }
      if (!final && (mode & S_IFMT) !== S_IFDIR) throw new SyscallError(E.ENOTDIR);
      stack.push(c);
      last = here;
    }
    return last;
  }

  /**
   * The common case in one host walk: no "..", and no symlink on the way,
   * so the guest path is the host path below one mount. The host kernel
   * checks that (openat2 with RESOLVE_NO_SYMLINKS) instead of an lstat per
   * component, which cost a program's start-up ~15 µs per path (python3
   * stats ~100). Undefined sends the path the slow way, component by
   * component, which decides everything else: symlinks, "..", errors.
   */
  #resolveWhole(path: string, cwd: string, followLast: boolean): Resolved | undefined {
    const parts = path.startsWith("/")
      ? components(path)
      : [...components(cwd), ...components(path)];
    const clean = parts.filter((c) => c !== ".");
    if (clean.some((c) => c === ".." || c.length > 255)) return undefined;
    const here = this.#locate(absolute(clean));
    if (!here.mount) return undefined;
    if (here.rel === "") return here;
    const walk = (rel: string, flags: number) => {
      const r = openat2Beneath(here.mount!.rootFd, rel, flags);
      if (r >= 0n) hostSyscall(NR.close, Number(r));
      return r;
    };
    const r = walk(here.rel, O_PATH | (followLast ? 0 : O_NOFOLLOW));
    if (r >= 0n) return here;
    if (r !== BigInt(-E.ENOENT)) return undefined;
    // Missing in its mount but on the way to another mount (a mount at
    // /tmp/a/b/c in a --memfs /tmp): a directory that only leads to mounts.
    if (this.leadsToMount(here.guest)) return { guest: here.guest, rel: "" };
    // Missing: fine when only the last component is (it may be created).
    const slash = here.rel.lastIndexOf("/");
    if (slash < 0) return here;
    const up = walk(here.rel.slice(0, slash), O_PATH | O_DIRECTORY);
    if (up >= 0n) return here;
    // A directory on the way is missing, reached with no symlink before it.
    if (up === BigInt(-E.ENOENT)) throw new SyscallError(E.ENOENT);
    return undefined;
  }

  #locate(guest: string): Resolved {
    const mount = this.mountFor(guest);
    if (!mount) return { guest, rel: "" };
    const rel = mount.guest === "/" ? guest.slice(1) : guest.slice(mount.guest.length + 1);
    return { guest, mount, rel };
  }

  #lstatMode(r: Resolved): number | undefined {
    if (r.rel === "") return S_IFDIR;
    const st = new Uint8Array(144);
    const ret = hostSyscall(
      NR.newfstatat,
      r.mount!.rootFd,
      bufferAddress(pathToCString(r.rel)),
      bufferAddress(st),
      AT_SYMLINK_NOFOLLOW,
    );
    if (ret === BigInt(-E.ENOENT)) return undefined;
    check(ret);
    return new DataView(st.buffer).getUint32(24, true);
  }

  #readlink(r: Resolved): string {
    const buf = new Uint8Array(4096);
    const n = check(
      hostSyscall(
        NR.readlinkat,
        r.mount!.rootFd,
        bufferAddress(pathToCString(r.rel)),
        bufferAddress(buf),
        buf.length,
      ),
    );
    return String.fromCharCode(...buf.subarray(0, n));
  }

  /** Closes every mount's root fd and removes in-memory file systems. */
  close(): void {
    if (--this.#users > 0) return;
    for (const m of this.#mounts) if (!this.#unmade.has(m)) hostSyscall(NR.close, m.rootFd);
    this.#mounts = [];
    this.#unmade.clear();
    for (const dir of this.#scratch.splice(0)) {
      // A view's directories are read-only: made writable again to go.
      if (dir === this.#views) chmodTree(dir);
      Deno.removeSync(dir, { recursive: true });
    }
    this.#views = undefined;
    this.#made.clear();
  }
}

/** An O_PATH fd on host directory `host`; a clear error when it is none. */
function openRoot(host: string): number {
  const fd = Number(
    hostSyscall(NR.open, bufferAddress(pathToCString(host)), O_PATH | O_DIRECTORY | O_CLOEXEC),
  );
  if (fd < 0) throw new Error(`hermitux: cannot mount ${host}: not a readable directory`);
  return fd;
}

/** The components of an in-memory file's path; throws for an empty one or one with "..". */
function checkedParts(path: string): string[] {
  const parts = components(path);
  if (parts.length === 0 || parts.includes("..")) {
    throw new Error(`hermitux: bad in-memory file path '${path}'`);
  }
  return parts;
}

/** Makes `files` in the fresh directory `dir` (which then reads as 0755, as a system directory). */
function fill(dir: string, files: readonly MemoryFile[]): void {
  Deno.chmodSync(dir, 0o755);
  for (const f of files) {
    const parts = checkedParts(f.path);
    const at = `${dir}/${parts.join("/")}`;
    if (parts.length > 1) {
      Deno.mkdirSync(`${dir}/${parts.slice(0, -1).join("/")}`, { recursive: true });
    }
    if (f.link !== undefined) Deno.symlinkSync(f.link, at);
    else if (f.data !== undefined) Deno.writeFileSync(at, f.data, { mode: f.mode ?? 0o644 });
    else Deno.mkdirSync(at, { recursive: true, mode: f.mode ?? 0o755 });
    if (f.mode !== undefined && f.link === undefined) Deno.chmodSync(at, f.mode);
  }
}

/** Makes every directory below `dir` writable (for its removal). */
function chmodTree(dir: string): void {
  for (const e of Deno.readDirSync(dir)) {
    if (!e.isDirectory) continue;
    Deno.chmodSync(`${dir}/${e.name}`, 0o755);
    chmodTree(`${dir}/${e.name}`);
  }
}

/** O_PATH, O_DIRECTORY and O_NOFOLLOW, for callers building open flags. */
export const OPEN_FLAGS = { O_PATH, O_DIRECTORY, O_NOFOLLOW } as const;
