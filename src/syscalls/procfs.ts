/**
 * /proc as Linux shows it to a process, made from the process table.
 *
 * Every guest process is a VM inside hermitux's one host process, so the
 * host's /proc would show the host's processes and none of the guest's:
 * here `/proc` lists the guest's processes only (alive, and zombies until
 * reaped), by the pids getpid, getppid, kill and wait use. Each has
 * `/proc/PID/` with `stat`, `status`, `statm`, `cmdline`, `comm`, `maps`,
 * `exe`, `cwd`, `root`, `fd/` and `task/TID/`; `/proc/self` and
 * `/proc/thread-self` name the caller. A few host files describe the
 * machine and are shown as they are (`cpuinfo`, `loadavg`, `meminfo`,
 * `uptime`, `stat`, `sys/kernel/pid_max`, `tty/drivers`): `ps` and `top`
 * need them. Any other name under /proc, and any pid that is not a guest
 * process's, is ENOENT.
 *
 * A file is generated when opened (a read-only memfd holds the text), so
 * what a reader sees is one consistent snapshot. An open directory is an
 * empty host directory (for fstat, lseek and fchdir) whose entries, taken
 * when it is opened, getdents64 lists here, in order (the pids ascending).
 * `stat` of a name is made up as Linux's procfs shows it (type and mode,
 * owner, the process's start time) without opening anything. The contents
 * of each process's files are src/syscalls/procinfo.ts's.
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import type { OpenFile } from "./fdtable.ts";
import { bufferAddress, hostSyscall } from "./host.ts";
import type { Process } from "./registry.ts";
import {
  boottimeNs,
  clockNs,
  findTask,
  processes,
  type Task,
  TASK_FILES,
  threads,
  tidOf,
} from "./procinfo.ts";
import { components, normalize, pathToCString } from "../vfs/path.ts";
import { openBeneath } from "../vfs/mounts.ts";

const NR_OPEN = 2, NR_CLOSE = 3, NR_FSTAT = 5, NR_LSEEK = 8, NR_PWRITE64 = 18, NR_FCNTL = 72;
const NR_READLINK = 89, NR_FCHMOD = 91, NR_MEMFD_CREATE = 319, NR_STATX = 332;
const O_ACCMODE = 3, O_CREAT = 0o100, O_TRUNC = 0o1000, O_DIRECTORY = 0o200000;
const O_NOFOLLOW = 0o400000, O_CLOEXEC = 0o2000000, O_PATH = 0o10000000;
const AT_EMPTY_PATH = 0x1000;
const CLOCK_REALTIME = 0;
const S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFLNK = 0o120000;

/** Whether `guest` (absolute and normal) names /proc or something in it. */
export function isProcPath(guest: string): boolean {
  return guest === "/proc" || guest.startsWith("/proc/");
}

/** What a name in /proc is. */
export type Kind = "dir" | "file" | "link";

/** A name under /proc. */
interface Node {
  readonly kind: Kind;
  /** Its path (its inode number comes from it). */
  readonly path: string;
  /** The thread whose entry it is (owner and times), if any. */
  readonly task?: Task;
  /** Permission bits. */
  readonly mode: number;
  /** A directory's entries. */
  readonly entries?: () => [string, Kind][];
  /** A file's contents. */
  readonly text?: () => Uint8Array;
  /** A host file shown read-only in its place. */
  readonly host?: string;
  /** A link's target, as readlink gives it. */
  readonly target?: () => Uint8Array;
  /** What a link leads to, on the host (for stat): a fd, and whether it is a new one. */
  readonly leads?: () => { fd: number; owned: boolean };
  /** Opens what a link leads to, as a new host fd. */
  readonly reopen?: (flags: number) => number;
}

/** Host files shown as they are: they describe the machine, not processes. */
type HostTree = { [name: string]: string | HostTree };
const HOST_TREE: HostTree = {
  cpuinfo: "/proc/cpuinfo",
  loadavg: "/proc/loadavg",
  meminfo: "/proc/meminfo",
  stat: "/proc/stat",
  uptime: "/proc/uptime",
  sys: { kernel: { pid_max: "/proc/sys/kernel/pid_max" } },
  tty: { drivers: "/proc/tty/drivers" },
};

/** What /proc/PID/task/TID has; /proc/PID has task/ besides. */
const THREAD_ENTRIES: [string, Kind][] = [
  ...["cmdline", "comm", "maps", "stat", "statm", "status"].map((n): [string, Kind] => [n, "file"]),
  ...["cwd", "exe", "root"].map((n): [string, Kind] => [n, "link"]),
  ["fd", "dir"],
];
const PROCESS_ENTRIES: [string, Kind][] = [...THREAD_ENTRIES, ["task", "dir"]];

const latin1 = (s: string) => pathToCString(s).subarray(0, -1);
const enoent = () => new SyscallError(E.ENOENT);

/**
 * Where an absolute path argument leads when it is in /proc: through
 * /proc/PID/cwd or /proc/PID/root (or a thread's), the guest path the link
 * leads to, as those links lead into the guest's own view of the files;
 * any other /proc path in normal form, with `self` and `thread-self`
 * followed before a `..` after them applies. `follow`: whether a link as
 * the last component is followed. Undefined for a path outside /proc.
 */
export function procPath(p: Process, abs: string, follow: boolean): string | undefined {
  const parts = components(abs);
  if (parts[0] !== "proc") return undefined;
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const c = parts[i], last = i === parts.length - 1;
    if (c === "." || c === "..") {
      if (c === "..") out.pop();
      continue;
    }
    out.push(c);
    if (out.length === 2 && out[0] === "proc" && (!last || follow)) {
      if (c === "self") out[1] = `${p.pid}`;
      else if (c === "thread-self") out.splice(1, 1, `${p.pid}`, "task", `${tidOf(p)}`);
    }
    const at = out[2] === "task" ? 4 : 2;
    if (out.length !== at + 1 || out[0] !== "proc" || (last && !follow)) continue;
    if (c !== "cwd" && c !== "root") continue;
    const task = /^[1-9][0-9]*$/.test(out[1]) ? findTask(p, Number(out[1])) : undefined;
    if (!task || task.proc.status !== undefined) continue;
    if (at === 4 && !threads(task.proc).some((t) => `${t.tid}` === out[3])) continue;
    const base = c === "cwd" ? task.proc.process.cwd : "/";
    const rest = parts.slice(i + 1);
    return rest.length ? `${base === "/" ? "" : base}/${rest.join("/")}` : base;
  }
  return "/" + out.join("/");
}

/**
 * What execve runs for `path` (relative to the cwd): a path through /proc
 * is this procfs's, never the host's /proc under a mount of "/" (whose
 * /proc/self/exe is the host's Deno): /proc/PID/exe leads to that
 * process's program, a cwd or root link to the guest path it names, and
 * anything else in /proc is EACCES, as a file without execute permission.
 * Other paths come back as they are.
 */
export function execTarget(p: Process, path: string): string {
  const abs = normalize(path.startsWith("/") ? path : `${p.cwd}/${path}`);
  if (!isProcPath(abs)) return path;
  const r = procPath(p, abs, true) ?? abs;
  if (!isProcPath(r)) return r;
  const m = /^\/proc\/([1-9][0-9]*)(?:\/task\/[1-9][0-9]*)?\/exe$/.exec(r);
  if (!m) throw new SyscallError(E.EACCES);
  const task = findTask(p, Number(m[1]));
  if (!task || task.proc.status !== undefined) throw new SyscallError(E.ENOENT);
  return task.proc.process.exePath;
}

/** The node `guest` names; `follow`: whether a link as its last component is followed. */
function lookup(p: Process, guest: string, follow: boolean): Node {
  let parts = components(guest).slice(1);
  if (parts[0] === "self" || parts[0] === "thread-self") {
    const to = parts[0] === "self" ? `${p.pid}` : `${p.pid}/task/${tidOf(p)}`;
    if (parts.length === 1 && !follow) {
      return { kind: "link", path: guest, mode: 0o777, target: () => latin1(to) };
    }
    parts = [...to.split("/"), ...parts.slice(1)];
  }
  if (parts.length && /^[1-9][0-9]*$/.test(parts[0])) {
    const task = findTask(p, Number(parts[0]));
    if (!task) throw enoent();
    return inTask(p, task, `/proc/${parts[0]}`, parts.slice(1), true);
  }
  let at: string | HostTree = HOST_TREE;
  for (const c of parts) {
    if (typeof at === "string") throw new SyscallError(E.ENOTDIR);
    if (!Object.hasOwn(at, c)) throw enoent();
    at = at[c];
  }
  const path = `/proc${parts.map((c) => "/" + c).join("")}`;
  if (typeof at === "string") return { kind: "file", path, mode: 0o444, host: at };
  const tree = at;
  const names = (): [string, Kind][] =>
    Object.entries(tree).map(([n, v]) => [n, typeof v === "string" ? "file" : "dir"]);
  if (parts.length) return { kind: "dir", path, mode: 0o555, entries: names };
  return {
    kind: "dir",
    path,
    mode: 0o555,
    entries: () => [
      ...processes(p).map((q): [string, Kind] => [`${q.pid}`, "dir"]),
      ["self", "link"],
      ["thread-self", "link"],
      ...names(),
    ],
  };
}

/** A name in /proc/PID (`whole`) or in /proc/PID/task/TID. */
function inTask(p: Process, t: Task, base: string, rest: string[], whole: boolean): Node {
  const q = t.proc, zombie = q.status !== undefined, path = `${base}/${rest.join("/")}`;
  if (!rest.length) {
    return {
      kind: "dir",
      path: base,
      task: t,
      mode: 0o555,
      entries: () => whole ? PROCESS_ENTRIES : THREAD_ENTRIES,
    };
  }
  const [name, ...more] = rest;
  const leaf = () => {
    if (more.length) throw new SyscallError(E.ENOTDIR);
  };
  if (name === "task" && whole) {
    if (!more.length) {
      return {
        kind: "dir",
        path,
        task: t,
        mode: 0o555,
        entries: () => threads(q).map(({ tid }): [string, Kind] => [`${tid}`, "dir"]),
      };
    }
    if (!threads(q).some(({ tid }) => `${tid}` === more[0])) throw enoent();
    const thread = { proc: q, tid: Number(more[0]) };
    return inTask(p, thread, `${base}/task/${more[0]}`, more.slice(1), false);
  }
  if (name === "fd") {
    if (!more.length) {
      const entries = (): [string, Kind][] =>
        zombie ? [] : q.process.fds.entries().map(([n]): [string, Kind] => [`${n}`, "link"]);
      return { kind: "dir", path, task: t, mode: 0o500, entries };
    }
    if (more.length > 1) throw new SyscallError(E.ENOTDIR);
    if (zombie || !/^[0-9]+$/.test(more[0])) throw enoent();
    const file = fdEntry(q.process, more[0]);
    // The link's mode says how the fd was opened: r for reading, w for writing.
    const access = Number(hostSyscall(NR_FCNTL, file.hostFd, 3)) & O_ACCMODE; // F_GETFL
    const reads = access !== 1, writes = access !== 0; // O_WRONLY 1, O_RDONLY 0
    return {
      kind: "link",
      path,
      task: t,
      mode: (reads ? 0o400 : 0) | (writes ? 0o200 : 0) | 0o100,
      target: () => fdLink(file),
      leads: () => ({ fd: file.hostFd, owned: false }),
      // Opens what the fd refers to again, as Linux does, with the new flags.
      reopen: (flags) => hostOpen(`/proc/self/fd/${file.hostFd}`, flags & ~(O_CLOEXEC | O_CREAT)),
    };
  }
  if (Object.hasOwn(TASK_FILES, name)) {
    leaf();
    return { kind: "file", path, task: t, mode: 0o444, text: () => TASK_FILES[name](p, t) };
  }
  if (name === "exe" || name === "cwd" || name === "root") {
    leaf();
    if (zombie) throw enoent();
    const target = name === "exe" ? q.process.exePath : name === "cwd" ? q.process.cwd : "/";
    const node: Node = { kind: "link", path, task: t, mode: 0o777, target: () => latin1(target) };
    if (name !== "exe") return node;
    return {
      ...node,
      leads: () => ({ fd: exeOpen(q.process, target, O_PATH), owned: true }),
      reopen: (flags) => {
        if (flags & O_ACCMODE) throw new SyscallError(26); // ETXTBSY: it is running
        return exeOpen(q.process, target, 0);
      },
    };
  }
  throw enoent();
}

/**
 * Opens a process's program, `path` as the guest names it: through the
 * guest's mounts (a program under `--mount /host/dir:/x` is /x/prog to the
 * guest), else on the host (a program the guest was run from outside them).
 */
function exeOpen(p: Process, path: string, flags: number): number {
  let r;
  try {
    r = p.mounts.resolve(path, "/");
  } catch { /* outside the guest's view */ }
  if (r?.mount) return openBeneath(r.mount.rootFd, r.rel, flags | O_CLOEXEC);
  return hostOpen(path, flags);
}

function hostOpen(path: string, flags: number): number {
  const fd = hostSyscall(NR_OPEN, bufferAddress(pathToCString(path)), flags | O_CLOEXEC);
  if (fd < 0n) throw new SyscallError(Number(-fd));
  return Number(fd);
}

/** The open file behind /proc/PID/fd/N: a closed fd has no entry there (ENOENT). */
function fdEntry(p: Process, n: string): OpenFile {
  try {
    return p.fds.get(BigInt(n));
  } catch {
    throw enoent();
  }
}

/** What readlink shows for /proc/PID/fd/N: the guest path, or the host's "pipe:[…]" etc. */
function fdLink(file: OpenFile): Uint8Array {
  if (file.path !== undefined) return latin1(file.path);
  const buf = new Uint8Array(256);
  const link = pathToCString(`/proc/self/fd/${file.hostFd}`);
  const r = hostSyscall(NR_READLINK, bufferAddress(link), bufferAddress(buf), buf.length);
  if (r < 0n) throw new SyscallError(Number(-r));
  const target = buf.subarray(0, Number(r));
  // A host file the guest was handed (stdio) is not in the guest's view.
  return target[0] === 0x2f ? latin1("/dev/hermitux-host-fd") : target;
}

// ---- The file calls ----

/** A host fd (and what to do when it closes) for a /proc name the guest opens. */
export interface ProcFile {
  /** The host fd. */
  fd: number;
  /** Runs when the guest closes its last fd of it. */
  cleanup?: () => void;
}

/** open(2) of a /proc path with `flags`. */
export function procOpen(p: Process, guest: string, flags: number): ProcFile {
  const nofollow = (flags & O_NOFOLLOW) !== 0 && !(flags & O_PATH);
  const n = lookup(p, guest, !nofollow);
  const writes = (flags & O_ACCMODE) !== 0 || (flags & (O_CREAT | O_TRUNC)) !== 0;
  if (n.kind === "link") {
    if (nofollow || !n.reopen) throw new SyscallError(E.ELOOP);
    return { fd: n.reopen(flags) };
  }
  if (n.kind === "dir") {
    if (writes) throw new SyscallError(E.EISDIR);
    return listing(n);
  }
  if (flags & O_DIRECTORY) throw new SyscallError(E.ENOTDIR);
  if (writes) throw new SyscallError(E.EACCES);
  if (n.host) return { fd: hostOpen(n.host, flags & ~(O_CLOEXEC | O_CREAT | O_NOFOLLOW)) };
  return { fd: textFd(n.text!()) };
}

/** A host fd holding generated bytes (a read-only memfd), at offset 0. */
function textFd(bytes: Uint8Array): number {
  const fd = Number(hostSyscall(NR_MEMFD_CREATE, bufferAddress(pathToCString("hermitux")), 1));
  if (fd < 0) throw new SyscallError(-fd);
  hostSyscall(NR_PWRITE64, fd, bufferAddress(bytes), bytes.length, 0);
  hostSyscall(NR_FCHMOD, fd, 0o444);
  return fd;
}

/** Open /proc directories by host fd: what getdents64 lists (name, d_type, inode). */
const listings = new Map<number, [Uint8Array, number, bigint][]>();
const DT = { dir: 4, file: 8, link: 10 } as const;

/**
 * A /proc directory opened: an empty host directory made for it (what
 * fstat, fchdir and lseek see), removed when the guest closes it, and its
 * entries as of now, which {@linkcode procGetdents} lists in order.
 */
function listing(n: Node): ProcFile {
  const dir = Deno.makeTempDirSync({ dir: "/dev/shm", prefix: "hermitux-proc-" });
  let fd = -1;
  const cleanup = () => {
    listings.delete(fd);
    Deno.removeSync(dir);
  };
  try {
    Deno.chmodSync(dir, 0o555);
    fd = hostOpen(dir, O_DIRECTORY);
  } catch (e) {
    cleanup();
    throw e;
  }
  const up = n.path.slice(0, n.path.lastIndexOf("/")) || "/";
  listings.set(fd, [
    [latin1("."), DT.dir, inode(n.path)],
    [latin1(".."), DT.dir, inode(up)],
    ...n.entries!().map(([name, kind]): [Uint8Array, number, bigint] => [
      latin1(name),
      DT[kind],
      inode(`${n.path}/${name}`),
    ]),
  ]);
  return { fd, cleanup };
}

/**
 * getdents64(2) on host fd `fd` when it is an open /proc directory: its
 * entries from the directory's offset on, in order (the offset is the
 * host fd's, so lseek and rewinddir work); undefined for any other fd.
 */
export function procGetdents(fd: number, out: Uint8Array): number | undefined {
  const list = listings.get(fd);
  if (!list) return undefined;
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let pos = Number(hostSyscall(NR_LSEEK, fd, 0, 1)), at = 0; // SEEK_CUR
  for (; pos < list.length; pos++) {
    const [name, type, ino] = list[pos];
    const size = (19 + name.length + 1 + 7) & ~7;
    if (at + size > out.length) {
      if (at === 0) throw new SyscallError(E.EINVAL);
      break;
    }
    out.fill(0, at, at + size);
    v.setBigUint64(at, ino, true);
    v.setBigInt64(at + 8, BigInt(pos + 1), true);
    v.setUint16(at + 16, size, true);
    out[at + 18] = type;
    out.set(name, at + 19);
    at += size;
  }
  hostSyscall(NR_LSEEK, fd, pos, 0); // SEEK_SET
  return at;
}

/** readlink(2) of a /proc path: the link's target (EINVAL for what is not a link). */
export function procReadlink(p: Process, guest: string): Uint8Array {
  const n = lookup(p, guest, false);
  if (n.kind !== "link") throw new SyscallError(E.EINVAL);
  return n.target!();
}

/**
 * access(2)/faccessat(2) of a /proc path: it exists (else ENOENT), and
 * nothing in it may be written; returns what it is.
 */
export function procAccess(p: Process, guest: string, mode: number, follow = true): Kind {
  const n = lookup(p, guest, follow);
  if (mode & 2) throw new SyscallError(E.EACCES);
  if (mode & 1 && n.kind === "file") throw new SyscallError(E.EACCES);
  return n.kind;
}

/**
 * A host fd for what `n` stands for, when the host can stat it (a host
 * file, what a followed link leads to), with whether it must be closed.
 */
function hostSide(n: Node, follow: boolean): { fd: number; owned: boolean } | undefined {
  if (n.host) return { fd: hostOpen(n.host, O_PATH), owned: true };
  if (n.kind === "link" && follow) {
    if (!n.leads) throw new SyscallError(E.ENOENT);
    return n.leads();
  }
  return undefined;
}

function withHostSide(n: Node, follow: boolean, f: (fd: number) => bigint): bigint | undefined {
  const h = hostSide(n, follow);
  if (!h) return undefined;
  try {
    return f(h.fd);
  } finally {
    if (h.owned) hostSyscall(NR_CLOSE, h.fd);
  }
}

let procDev: bigint | undefined;

/** The host's procfs device number: /proc's names are on it, as on Linux. */
function device(): bigint {
  if (procDev === undefined) {
    try {
      procDev = BigInt(Deno.statSync("/proc").dev);
    } catch {
      procDev = 0x15n;
    }
  }
  return procDev;
}

/** An inode number for a /proc path (FNV-1a). */
function inode(path: string): bigint {
  let h = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) h = Math.imul(h ^ path.charCodeAt(i), 0x01000193) >>> 0;
  return BigInt(h) + 0x1000n;
}

/** What stat shows of a node: type and mode, owner, links, and time (the process's start). */
function attrs(n: Node) {
  const type = n.kind === "dir" ? S_IFDIR : n.kind === "link" ? S_IFLNK : S_IFREG;
  const wall = clockNs(CLOCK_REALTIME), boot = boottimeNs();
  const ns = n.task ? wall - (boot - n.task.proc.started) : wall - boot;
  return {
    mode: type | n.mode,
    uid: n.task ? Deno.uid() ?? 0 : 0,
    gid: n.task ? Deno.gid() ?? 0 : 0,
    nlink: n.kind === "dir" ? 2 : 1,
    sec: ns / 1_000_000_000n,
    nsec: ns % 1_000_000_000n,
  };
}

/** stat(2) of a /proc path into `out` (a guest struct stat); `follow`: a last link is followed. */
export function procStat(p: Process, guest: string, follow: boolean, out: Uint8Array): bigint {
  const n = lookup(p, guest, follow);
  const host = new Uint8Array(out.length);
  const r = withHostSide(n, follow, (fd) => hostSyscall(NR_FSTAT, fd, bufferAddress(host)));
  if (r !== undefined) {
    if (r === 0n) out.set(host);
    return r;
  }
  const a = attrs(n), v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.fill(0);
  v.setBigUint64(0, device(), true);
  v.setBigUint64(8, inode(n.path), true);
  v.setBigUint64(16, BigInt(a.nlink), true);
  v.setUint32(24, a.mode, true);
  v.setUint32(28, a.uid, true);
  v.setUint32(32, a.gid, true);
  v.setBigInt64(56, 1024n, true); // st_blksize
  for (const o of [72, 88, 104]) {
    v.setBigInt64(o, a.sec, true);
    v.setBigInt64(o + 8, a.nsec, true);
  }
  return 0n;
}

/** statx(2) of a /proc path into `out` (a guest struct statx). */
export function procStatx(
  p: Process,
  guest: string,
  follow: boolean,
  mask: bigint,
  out: Uint8Array,
): bigint {
  const n = lookup(p, guest, follow);
  const host = new Uint8Array(out.length);
  const empty = bufferAddress(pathToCString(""));
  const r = withHostSide(
    n,
    follow,
    (fd) => hostSyscall(NR_STATX, fd, empty, AT_EMPTY_PATH, mask, bufferAddress(host)),
  );
  if (r !== undefined) {
    if (r === 0n) out.set(host);
    return r;
  }
  const a = attrs(n), v = new DataView(out.buffer, out.byteOffset, out.byteLength), dev = device();
  out.fill(0);
  v.setUint32(0, 0x7ff, true); // STATX_BASIC_STATS
  v.setUint32(4, 1024, true);
  v.setUint32(16, a.nlink, true);
  v.setUint32(20, a.uid, true);
  v.setUint32(24, a.gid, true);
  v.setUint16(28, a.mode, true);
  v.setBigUint64(32, inode(n.path), true);
  for (const o of [64, 96, 112]) { // atime, ctime, mtime
    v.setBigInt64(o, a.sec, true);
    v.setUint32(o + 8, Number(a.nsec), true);
  }
  v.setUint32(136, Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn)), true);
  v.setUint32(140, Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn)), true);
  return 0n;
}
