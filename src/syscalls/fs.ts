/**
 * Files and directories through the mount table: open and the *at family,
 * stat, directories, links, permissions, the working directory, dup and
 * fcntl, pipes. Each path goes through `MountTable.resolve`; the host
 * operation then runs below the mount's root fd with no symlink following,
 * so nothing outside the mounts can be named. Data moves between host fds
 * and guest memory directly.
 * @module
 */
import { clipOverlays, fileId } from "../vm/shared.ts";
import { E, SyscallError } from "./errno.ts";
import { FdTable, OpenFile } from "./fdtable.ts";
import { checkFileSize, fileSizeAllows } from "./limits.ts";
import { bufferAddress, hostSyscall } from "./host.ts";
import type { Process, SyscallCall, SyscallHandler, SyscallModule } from "./registry.ts";
import { OPEN_FLAGS, openBeneath, OutsideMounts, type Resolved } from "../vfs/mounts.ts";
import { bytesToPath, components, normalize, pathToCString } from "../vfs/path.ts";
import {
  isProcPath,
  procAccess,
  procGetdents,
  procOpen,
  procPath,
  procReadlink,
  procStat,
  procStatx,
} from "./procfs.ts";
import { openMayBlock } from "./fifo.ts";
import { pipeFcntl } from "./splice.ts";

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100, AT_REMOVEDIR = 0x200, AT_EMPTY_PATH = 0x1000;
const O_ACCMODE = 3, O_CREAT = 0o100, O_TRUNC = 0o1000, O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000, O_TMPFILE = 0o20000000 | 0o200000;
const F_DUPFD = 0, F_GETFD = 1, F_SETFD = 2, F_GETFL = 3, F_SETFL = 4, F_DUPFD_CLOEXEC = 1030;
const FD_CLOEXEC = 1;
const STAT_SIZE = 144, STATX_SIZE = 256, STATFS_SIZE = 120;
const PATH_MAX = 4096;

/** Host syscall numbers used here. */
const NR = {
  read: 0,
  write: 1,
  close: 3,
  fstat: 5,
  pread64: 17,
  pwrite64: 18,
  readv: 19,
  writev: 20,
  access: 21,
  pipe2: 293,
  dup: 32,
  fcntl: 72,
  flock: 73,
  fsync: 74,
  fdatasync: 75,
  ftruncate: 77,
  getdents64: 217,
  fchmod: 91,
  fchown: 93,
  fstatfs: 138,
  fadvise64: 221,
  fallocate: 285,
  copy_file_range: 326,
  memfd_create: 319,
  mkdirat: 258,
  fchownat: 260,
  newfstatat: 262,
  unlinkat: 263,
  renameat2: 316,
  linkat: 265,
  symlinkat: 266,
  readlinkat: 267,
  fchmodat: 268,
  faccessat2: 439,
  utimensat: 280,
  statx: 332,
  umask: 95,
} as const; // deno-fmt-ignore

const int = (v: bigint) => Number(BigInt.asIntN(32, v));

/** A guest path argument, binary-safe. */
export function pathArg(p: Process, addr: bigint): string {
  return bytesToPath(p.mem.cBytes(addr, PATH_MAX));
}

/** The guest directory a *at syscall's dirfd names. */
function dirOf(p: Process, dirfd: bigint): string {
  if (int(dirfd) === AT_FDCWD) return p.cwd;
  const f = p.fds.get(dirfd);
  if (f.path === undefined) throw new SyscallError(E.ENOTDIR);
  return f.path;
}

/** Resolves (dirfd, path) to a mount; ENOENT when it lies on no mount. */
export function resolveAt(p: Process, dirfd: bigint, path: string, follow = true): Resolved {
  return p.mounts.resolve(path, path.startsWith("/") ? "/" : dirOf(p, dirfd), follow);
}

function onMount(r: Resolved, write = false) {
  if (!r.mount) throw new SyscallError(write ? E.EROFS : E.EACCES);
  if (write && r.mount.readOnly) throw new SyscallError(E.EROFS);
  return r.mount;
}

/**
 * Runs `op(parentFd, name)` on the parent directory of `r`, opened below
 * the mount root with no symlinks followed. The mount root itself is
 * (rootFd, ".").
 */
export function inParent(
  r: Resolved,
  write: boolean,
  op: (dirFd: number, name: Uint8Array) => bigint,
) {
  const m = onMount(r, write);
  if (r.rel === "") return op(m.rootFd, pathToCString("."));
  const parts = components(r.rel);
  const name = parts.pop()!;
  const dir = openBeneath(m.rootFd, parts.join("/"), OPEN_FLAGS.O_PATH | OPEN_FLAGS.O_DIRECTORY);
  try {
    return op(dir, pathToCString(name));
  } finally {
    hostSyscall(NR.close, dir);
  }
}

/** Devices every guest has: the host's own, harmless to share. */
const DEVICES = new Set(["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"]);

/** A kernel-provided file, open on the host, and what to do when it closes. */
interface Special {
  fd: number;
  cleanup?: () => void;
}

/**
 * Opens the files the kernel provides rather than a mount: devices and
 * /proc (src/syscalls/procfs.ts). Returns a host fd, or undefined when
 * `guest` is not one of them.
 */
function openSpecial(p: Process, guest: string, flags: number): Special | undefined {
  if (DEVICES.has(guest)) {
    const how = flags & ~(O_CLOEXEC | O_CREAT | O_TRUNC);
    const fd = hostSyscall(2, bufferAddress(pathToCString(guest)), how | O_CLOEXEC);
    if (fd < 0n) throw new SyscallError(Number(-fd));
    return { fd: Number(fd) };
  }
  if (isProcPath(guest)) return procOpen(p, guest, flags);
  return undefined;
}

/** The lexically normal absolute form of a guest path, for the special files. */
function specialName(p: Process, dirfd: bigint, path: string): string {
  return normalize(path.startsWith("/") ? path : `${dirOf(p, dirfd)}/${path}`);
}

/**
 * A path argument as it leads through /proc (see procPath): a path in
 * /proc in normal form, or the guest path a /proc/PID/cwd or root link
 * leads to; any other path as it is.
 */
export function throughProc(p: Process, dirfd: bigint, path: string, follow = true): string {
  if (path === "") return path;
  const abs = path.startsWith("/") ? path : `${dirOf(p, dirfd)}/${path}`;
  return abs.startsWith("/proc") ? procPath(p, abs, follow) ?? path : path;
}

/**
 * Runs a creating host call with the guest's umask applied instead of the
 * host process's: the host umask is 0 for the call's duration (the host
 * side is single-threaded here), so modes come out as on Linux.
 */
export function withGuestUmask<T>(p: Process, f: (umask: number) => T): T {
  const umask = Number(p.state.get("umask") ?? 0o022);
  const old = hostSyscall(NR.umask, 0);
  try {
    return f(umask);
  } finally {
    hostSyscall(NR.umask, old);
  }
}

/** Opens a guest path and installs the fd: the heart of open/openat/creat. */
function openAt(p: Process, dirfd: bigint, pathAddr: bigint, flags: number, mode: number) {
  const nofollow = (flags & OPEN_FLAGS.O_NOFOLLOW) !== 0;
  const path = throughProc(p, dirfd, pathArg(p, pathAddr), !nofollow);
  const guest = specialName(p, dirfd, path);
  const special = openSpecial(p, guest, flags);
  if (special !== undefined) {
    const file = new OpenFile(special.fd, { path: guest, cleanup: special.cleanup });
    return p.fds.install(file, (flags & O_CLOEXEC) !== 0);
  }
  if ((flags & O_TMPFILE) === O_TMPFILE) throw new SyscallError(E.EOPNOTSUPP);
  let r: Resolved;
  try {
    r = resolveAt(p, dirfd, path, !nofollow);
  } catch (e) {
    // Creating a file in a directory that only leads to mount points.
    throw e instanceof OutsideMounts && flags & O_CREAT ? new SyscallError(E.EROFS) : e;
  }
  const writes = (flags & O_ACCMODE) !== 0 || (flags & (O_CREAT | O_TRUNC)) !== 0;
  if (!r.mount) {
    // A directory that only leads to mount points: read-only, listing them.
    if (writes) throw new SyscallError(E.EROFS);
    const hostFd = p.mounts.openVirtual(r.guest, flags & (OPEN_FLAGS.O_PATH | O_NONBLOCK));
    return p.fds.install(new OpenFile(hostFd, { path: r.guest }), (flags & O_CLOEXEC) !== 0);
  }
  if (writes && r.mount.readOnly) {
    const exists = statAt(r, false) >= 0n;
    if (exists || flags & O_CREAT) throw new SyscallError(E.EROFS);
    throw new SyscallError(E.ENOENT);
  }
  const how = (flags & ~O_CLOEXEC) | (nofollow ? OPEN_FLAGS.O_NOFOLLOW : 0);
  return openMayBlock(p, r, how, mode, (flags & O_CLOEXEC) !== 0); // a FIFO may wait (fifo.ts)
}

/**
 * A truncation of host fd `fd` to `size` that returned `r`: shared
 * mappings of the file in every process give back their pages past the
 * new end (src/vm/shared.ts), which the host must never read. Returns `r`.
 */
function truncated(fd: number, r: bigint, size = 0n): bigint {
  if (r >= 0n) {
    const id = fileId(fd);
    if (id) clipOverlays(id, Number(size));
  }
  return r;
}

/** lstat/stat of a resolved path into `buf` (a host address), or a probe. */
function statAt(r: Resolved, follow: boolean, buf?: bigint): bigint {
  const st = buf ?? bufferAddress(new Uint8Array(STAT_SIZE));
  return inParent(
    r,
    false,
    (dir, name) =>
      hostSyscall(NR.newfstatat, dir, bufferAddress(name), st, follow ? 0 : AT_SYMLINK_NOFOLLOW),
  );
}

function statPath(call: SyscallCall, dirfd: bigint, pathAddr: bigint, buf: bigint, flags: number) {
  const p = call.process;
  const follow = !(flags & AT_SYMLINK_NOFOLLOW);
  const path = throughProc(p, dirfd, pathArg(p, pathAddr), follow);
  const out = p.mem.hostAddress(buf, STAT_SIZE);
  if (path === "" && flags & AT_EMPTY_PATH) {
    const fd = int(dirfd) === AT_FDCWD ? undefined : p.fds.get(dirfd);
    if (fd) return hostSyscall(NR.fstat, fd.hostFd, out);
  }
  const guest = path === "" ? "" : specialName(p, dirfd, path);
  if (isProcPath(guest)) {
    return procStat(p, guest, follow, p.mem.slice(buf, STAT_SIZE));
  }
  const special = path === "" ? undefined : openSpecial(p, guest, 0);
  if (special !== undefined) {
    const r = hostSyscall(NR.fstat, special.fd, out);
    hostSyscall(NR.close, special.fd);
    special.cleanup?.();
    return r;
  }
  const r = resolveAt(p, dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW));
  if (!r.mount) return virtualDirStat(p, r.guest, out);
  return statAt(r, !(flags & AT_SYMLINK_NOFOLLOW), out);
}

/**
 * A directory that only leads to mounts is a read-only one that lists
 * them: what it is stands in a host directory made for it (MountTable.viewOf).
 */
function virtualDirStat(p: Process, path: string, out: bigint): bigint {
  const view = pathToCString(p.mounts.viewOf(path));
  return hostSyscall(NR.newfstatat, AT_FDCWD, bufferAddress(view), out, 0);
}

/** statx's {@linkcode virtualDirStat}. */
function virtualDirStatx(p: Process, path: string, flags: bigint, mask: bigint, out: bigint) {
  const view = pathToCString(p.mounts.viewOf(path));
  return hostSyscall(NR.statx, AT_FDCWD, bufferAddress(view), flags, mask, out);
}

function rw(nr: number) {
  return ({ args: [fd, buf, count, off], process: p }: SyscallCall) => {
    const file = p.fds.get(fd);
    if (nr === NR.pwrite64) count = fileSizeAllows(p, file, BigInt.asIntN(64, off), count);
    return hostSyscall(nr, file.hostFd, p.mem.hostAddress(buf, count), count, off);
  };
}

function dupTo(p: Process, oldfd: bigint, min: number, cloexec: boolean): number {
  return p.fds.install(p.fds.get(oldfd), cloexec, min);
}

function mutate(nr: number, extra: (call: SyscallCall) => bigint[] = () => []) {
  return (dirfdIdx: number, pathIdx: number, follow = false) => (call: SyscallCall) => {
    const p = call.process;
    const dirfd = dirfdIdx < 0 ? BigInt(AT_FDCWD) : call.args[dirfdIdx];
    const r = resolveAt(p, dirfd, pathArg(p, call.args[pathIdx]), follow);
    return inParent(
      r,
      true,
      (dir, name) => hostSyscall(nr, dir, bufferAddress(name), ...extra(call)),
    );
  };
}

/** rename/link: both paths must be on the same writable mount (else EXDEV). */
function twoPaths(
  call: SyscallCall,
  [olddirfd, oldpath, newdirfd, newpath]: bigint[],
  op: (oldDir: number, oldName: Uint8Array, newDir: number, newName: Uint8Array) => bigint,
  followOld = false,
) {
  const p = call.process;
  const from = resolveAt(p, olddirfd, pathArg(p, oldpath), followOld);
  const to = resolveAt(p, newdirfd, pathArg(p, newpath), false);
  if (from.mount && to.mount && from.mount !== to.mount) throw new SyscallError(E.EXDEV);
  return inParent(from, true, (od, on) => inParent(to, true, (nd, nn) => op(od, on, nd, nn)));
}

function getcwd({ args: [buf, size], process: p }: SyscallCall) {
  const bytes = pathToCString(p.cwd);
  if (Number(size) < bytes.length) throw new SyscallError(E.ERANGE);
  p.mem.slice(buf, bytes.length).set(bytes);
  return bytes.length;
}

/** chdir into /proc: the working directory is then a /proc path (relative names go there). */
function procChdir(p: Process, guest: string) {
  if (procAccess(p, guest, 1) !== "dir") throw new SyscallError(E.ENOTDIR);
  p.cwd = guest;
  return 0;
}

function chdirTo(p: Process, r: Resolved) {
  if (r.mount) {
    const st = new Uint8Array(STAT_SIZE);
    const ret = statAt(r, true, bufferAddress(st));
    if (ret < 0n) return ret;
    if ((new DataView(st.buffer).getUint32(24, true) & 0o170000) !== 0o040000) {
      throw new SyscallError(E.ENOTDIR);
    }
  }
  p.cwd = r.guest;
  return 0;
}

const fdArg = (call: SyscallCall, i = 0) => call.process.fds.get(call.args[i]).hostFd;

/**
 * Calls that make or remove a name: in a directory that only leads to
 * mount points, EROFS (it is read-only), not the ENOENT of a lookup.
 */
const NAMING = new Set([
  "mkdir",
  "mkdirat",
  "rmdir",
  "unlink",
  "unlinkat",
  "symlink",
  "symlinkat",
  "link",
  "linkat",
  "rename",
  "renameat",
  "renameat2",
  "mknod",
  "mknodat",
]);

function namingErrors(handlers: Record<string, SyscallHandler>): Record<string, SyscallHandler> {
  return Object.fromEntries(
    Object.entries(handlers).map(([name, h]) => [
      name,
      NAMING.has(name)
        ? (call: SyscallCall) => {
          try {
            return h(call);
          } catch (e) {
            throw e instanceof OutsideMounts ? new SyscallError(E.EROFS) : e;
          }
        }
        : h,
    ]),
  );
}

/** File and directory syscalls. */
export const fsModule: SyscallModule = {
  name: "fs",
  partial: {
    open: "O_TMPFILE is EOPNOTSUPP",
    openat: "as open",
    fcntl: "F_DUPFD(_CLOEXEC), F_GETFD/F_SETFD, F_GETFL/F_SETFL, record locks, " +
      "F_GETPIPE_SZ/F_SETPIPE_SZ and F_NOTIFY (accepted, no signal is sent); others EINVAL",
    linkat: "AT_EMPTY_PATH is not supported",
    utimensat: "a NULL path with a dirfd (futimens) only",
  },
  handlers: namingErrors({
    open: ({ args: [path, flags, mode], process: p }) =>
      openAt(p, BigInt(AT_FDCWD), path, int(flags), int(mode)),
    openat: ({ args: [dirfd, path, flags, mode], process: p }) =>
      openAt(p, dirfd, path, int(flags), int(mode)),
    creat: ({ args: [path, mode], process: p }) =>
      openAt(p, BigInt(AT_FDCWD), path, O_CREAT | 1 | O_TRUNC, int(mode)),
    pread64: rw(NR.pread64),
    pwrite64: rw(NR.pwrite64),
    stat: (c) => statPath(c, BigInt(AT_FDCWD), c.args[0], c.args[1], 0),
    lstat: (c) => statPath(c, BigInt(AT_FDCWD), c.args[0], c.args[1], AT_SYMLINK_NOFOLLOW),
    newfstatat: (c) => statPath(c, c.args[0], c.args[1], c.args[2], int(c.args[3])),
    statx(call) {
      const [dirfd, pathAddr, flags, mask, buf] = call.args;
      const p = call.process;
      const follow = !(Number(flags) & AT_SYMLINK_NOFOLLOW);
      const path = throughProc(p, dirfd, pathArg(p, pathAddr), follow);
      const out = p.mem.hostAddress(buf, STATX_SIZE);
      if (path === "" && Number(flags) & AT_EMPTY_PATH && int(dirfd) !== AT_FDCWD) {
        const empty = pathToCString("");
        return hostSyscall(NR.statx, fdArg(call), bufferAddress(empty), flags, mask, out);
      }
      const guest = path === "" ? "" : specialName(p, dirfd, path);
      if (isProcPath(guest)) {
        return procStatx(p, guest, follow, mask, p.mem.slice(buf, STATX_SIZE));
      }
      const r = resolveAt(p, dirfd, path, !(Number(flags) & AT_SYMLINK_NOFOLLOW));
      if (!r.mount) return virtualDirStatx(p, r.guest, flags, mask, out);
      return inParent(
        r,
        false,
        (dir, name) =>
          hostSyscall(
            NR.statx,
            dir,
            bufferAddress(name),
            flags & ~BigInt(AT_EMPTY_PATH),
            mask,
            out,
          ),
      );
    },
    getdents64({ args: [fd, buf, count], process: p }) {
      const hostFd = p.fds.get(fd).hostFd;
      const proc = procGetdents(hostFd, p.mem.slice(buf, count));
      return proc ?? hostSyscall(NR.getdents64, hostFd, p.mem.hostAddress(buf, count), count);
    },
    mkdir: (c) =>
      withGuestUmask(
        c.process,
        (u) => mutate(NR.mkdirat, (c) => [c.args[1] & ~BigInt(u)])(-1, 0)(c),
      ),
    mkdirat: (c) =>
      withGuestUmask(
        c.process,
        (u) => mutate(NR.mkdirat, (c) => [c.args[2] & ~BigInt(u)])(0, 1)(c),
      ),
    rmdir: (c) => mutate(NR.unlinkat, () => [BigInt(AT_REMOVEDIR)])(-1, 0)(c),
    unlink: (c) => mutate(NR.unlinkat, () => [0n])(-1, 0)(c),
    unlinkat: (c) => mutate(NR.unlinkat, (c) => [c.args[2] & BigInt(AT_REMOVEDIR)])(0, 1)(c),
    chmod: (c) => mutate(NR.fchmodat, (c) => [c.args[1], 0n])(-1, 0, true)(c),
    fchmodat: (c) => mutate(NR.fchmodat, (c) => [c.args[2], 0n])(0, 1, true)(c),
    chown: (c) => mutate(NR.fchownat, (c) => [c.args[1], c.args[2], 0n])(-1, 0, true)(c),
    lchown: (c) => mutate(NR.fchownat, (c) => [c.args[1], c.args[2], 0n])(-1, 0)(c),
    fchownat: (c) =>
      mutate(NR.fchownat, (c) => [c.args[2], c.args[3], 0n])(
        0,
        1,
        !(Number(c.args[4]) & AT_SYMLINK_NOFOLLOW),
      )(c),
    utimensat(call) {
      const [dirfd, pathAddr, times, flags] = call.args;
      const p = call.process;
      const t = times ? p.mem.hostAddress(times, 32) : 0n;
      if (!pathAddr) return hostSyscall(NR.utimensat, fdArg(call), 0, t, 0);
      const follow = !(Number(flags) & AT_SYMLINK_NOFOLLOW);
      const r = resolveAt(p, dirfd, pathArg(p, pathAddr), follow);
      return inParent(
        r,
        true,
        (dir, name) =>
          hostSyscall(NR.utimensat, dir, bufferAddress(name), t, follow ? 0 : AT_SYMLINK_NOFOLLOW),
      );
    },
    symlink: (c) => symlinkAt(c.process, c.args[0], BigInt(AT_FDCWD), c.args[1]),
    symlinkat: (c) => symlinkAt(c.process, c.args[0], c.args[1], c.args[2]),
    readlink: ({ args: [path, buf, size], process: p }) =>
      readlinkAt(p, BigInt(AT_FDCWD), path, buf, size),
    readlinkat: ({ args: [dirfd, path, buf, size], process: p }) =>
      readlinkAt(p, dirfd, path, buf, size),
    rename: (c) =>
      twoPaths(
        c,
        [BigInt(AT_FDCWD), c.args[0], BigInt(AT_FDCWD), c.args[1]],
        (od, on, nd, nn) =>
          hostSyscall(NR.renameat2, od, bufferAddress(on), nd, bufferAddress(nn), 0),
      ),
    renameat: (c) =>
      twoPaths(
        c,
        [c.args[0], c.args[1], c.args[2], c.args[3]],
        (od, on, nd, nn) =>
          hostSyscall(NR.renameat2, od, bufferAddress(on), nd, bufferAddress(nn), 0),
      ),
    renameat2: (c) =>
      twoPaths(
        c,
        [c.args[0], c.args[1], c.args[2], c.args[3]],
        (od, on, nd, nn) =>
          hostSyscall(NR.renameat2, od, bufferAddress(on), nd, bufferAddress(nn), c.args[4]),
      ),
    link: (c) =>
      twoPaths(
        c,
        [BigInt(AT_FDCWD), c.args[0], BigInt(AT_FDCWD), c.args[1]],
        (od, on, nd, nn) => hostSyscall(NR.linkat, od, bufferAddress(on), nd, bufferAddress(nn), 0),
      ),
    linkat: (c) =>
      twoPaths(
        c,
        [c.args[0], c.args[1], c.args[2], c.args[3]],
        (od, on, nd, nn) => hostSyscall(NR.linkat, od, bufferAddress(on), nd, bufferAddress(nn), 0),
        (Number(c.args[4]) & 0x400) !== 0, // AT_SYMLINK_FOLLOW
      ),
    access: ({ args: [path, mode], process: p }) => accessAt(p, BigInt(AT_FDCWD), path, mode, 0),
    faccessat: ({ args: [dirfd, path, mode], process: p }) => accessAt(p, dirfd, path, mode, 0),
    faccessat2: ({ args: [dirfd, path, mode, flags], process: p }) =>
      accessAt(p, dirfd, path, mode, Number(flags)),
    getcwd,
    chdir({ args: [path], process: p }) {
      const to = throughProc(p, BigInt(AT_FDCWD), pathArg(p, path));
      return isProcPath(to) ? procChdir(p, to) : chdirTo(p, p.mounts.resolve(to, p.cwd));
    },
    fchdir({ args: [fd], process: p }) {
      const f = p.fds.get(fd);
      if (f.path === undefined) throw new SyscallError(E.ENOTDIR);
      if (isProcPath(f.path)) return procChdir(p, f.path);
      return chdirTo(p, p.mounts.resolve(f.path, "/"));
    },
    dup: ({ args: [fd], process: p }) => dupTo(p, fd, 0, false),
    dup2({ args: [oldfd, newfd], process: p }) {
      const file = p.fds.get(oldfd), n = FdTable.number(newfd);
      if (n < 0 || n >= p.fds.limit) throw new SyscallError(E.EBADF);
      if (n !== FdTable.number(oldfd)) p.fds.set(n, file, false);
      return n;
    },
    dup3({ args: [oldfd, newfd, flags], process: p }) {
      const file = p.fds.get(oldfd), n = FdTable.number(newfd);
      if (n === FdTable.number(oldfd) || (Number(flags) & ~O_CLOEXEC)) {
        throw new SyscallError(E.EINVAL);
      }
      if (n < 0 || n >= p.fds.limit) throw new SyscallError(E.EBADF);
      p.fds.set(n, file, (Number(flags) & O_CLOEXEC) !== 0);
      return n;
    },
    fcntl(call) {
      const [fd, cmd, arg] = call.args;
      const p = call.process;
      const file = p.fds.get(fd);
      switch (int(cmd)) {
        case F_DUPFD:
        case F_DUPFD_CLOEXEC:
          if (int(arg) < 0 || int(arg) >= p.fds.limit) throw new SyscallError(E.EINVAL);
          return dupTo(p, fd, int(arg), int(cmd) === F_DUPFD_CLOEXEC);
        case F_GETFD:
          return p.fds.cloexec(fd) ? FD_CLOEXEC : 0;
        case F_SETFD:
          p.fds.setCloexec(fd, (Number(arg) & FD_CLOEXEC) !== 0);
          return 0;
        case F_GETFL:
        case F_SETFL:
          return hostSyscall(NR.fcntl, file.hostFd, cmd, arg);
        case 5: // F_GETLK
        case 6: // F_SETLK
        case 7: // F_SETLKW
        case 36: // F_OFD_GETLK
        case 37: // F_OFD_SETLK
        case 38: // F_OFD_SETLKW
          return hostSyscall(NR.fcntl, file.hostFd, cmd, p.mem.hostAddress(arg, 32));
        case 1026: // F_NOTIFY
        case 1031: // F_SETPIPE_SZ
        case 1032: // F_GETPIPE_SZ
          return pipeFcntl(file, int(cmd), arg);
        default:
          throw new SyscallError(E.EINVAL);
      }
    },
    flock: (c) => hostSyscall(NR.flock, fdArg(c), c.args[1]),
    fsync: (c) => hostSyscall(NR.fsync, fdArg(c)),
    fdatasync: (c) => hostSyscall(NR.fdatasync, fdArg(c)),
    ftruncate(c) {
      const fd = fdArg(c);
      checkFileSize(c.process, fd, BigInt.asIntN(64, c.args[1]));
      return truncated(fd, hostSyscall(NR.ftruncate, fd, c.args[1]), c.args[1]);
    },
    truncate(call) {
      const p = call.process;
      const r = p.mounts.resolve(pathArg(p, call.args[0]), p.cwd);
      const m = onMount(r, true);
      const fd = openBeneath(m.rootFd, r.rel, 1); // O_WRONLY
      try {
        checkFileSize(p, fd, BigInt.asIntN(64, call.args[1]));
        return truncated(fd, hostSyscall(NR.ftruncate, fd, call.args[1]), call.args[1]);
      } finally {
        hostSyscall(NR.close, fd);
      }
    },
    fchmod: (c) => hostSyscall(NR.fchmod, fdArg(c), c.args[1]),
    fchown: (c) => hostSyscall(NR.fchown, fdArg(c), c.args[1], c.args[2]),
    fstatfs: (c) =>
      hostSyscall(NR.fstatfs, fdArg(c), c.process.mem.hostAddress(c.args[1], STATFS_SIZE)),
    statfs(call) {
      const p = call.process;
      const r = p.mounts.resolve(pathArg(p, call.args[0]), p.cwd);
      const m = onMount(r);
      const fd = openBeneath(m.rootFd, r.rel, OPEN_FLAGS.O_PATH);
      try {
        return hostSyscall(NR.fstatfs, fd, p.mem.hostAddress(call.args[1], STATFS_SIZE));
      } finally {
        hostSyscall(NR.close, fd);
      }
    },
    fadvise64: (c) => hostSyscall(NR.fadvise64, fdArg(c), c.args[1], c.args[2], c.args[3]),
    fallocate(c) {
      const [, mode, offset, len] = c.args, fd = fdArg(c);
      // FALLOC_FL_KEEP_SIZE leaves the size alone.
      if (!(mode & 1n)) checkFileSize(c.process, fd, BigInt.asIntN(64, offset + len));
      return hostSyscall(NR.fallocate, fd, mode, offset, len);
    },
    copy_file_range(call) {
      const [inFd, offIn, outFd, offOut, , flags] = call.args;
      const m = call.process.mem;
      const out = call.process.fds.get(outFd);
      const at = offOut ? BigInt.asIntN(64, m.u64(offOut)) : undefined;
      const len = fileSizeAllows(call.process, out, at, call.args[4]);
      return hostSyscall(
        NR.copy_file_range,
        call.process.fds.get(inFd).hostFd,
        offIn ? m.hostAddress(offIn, 8) : 0,
        call.process.fds.get(outFd).hostFd,
        offOut ? m.hostAddress(offOut, 8) : 0,
        len,
        flags,
      );
    },
    pipe: ({ args: [fds], process: p }) => makePipe(p, fds, 0),
    pipe2: ({ args: [fds, flags], process: p }) => makePipe(p, fds, Number(flags)),
    memfd_create({ args: [name, flags], process: p }) {
      const n = pathToCString(pathArg(p, name));
      const fd = hostSyscall(
        NR.memfd_create,
        bufferAddress(n),
        (flags & ~BigInt(O_CLOEXEC)) | BigInt(1),
      );
      if (fd < 0n) return fd;
      return p.fds.install(new OpenFile(Number(fd)), (Number(flags) & 1) !== 0);
    },
  }),
};

/** The target is stored as given: only the guest's resolution ever reads it. */
function symlinkAt(p: Process, targetAddr: bigint, dirfd: bigint, pathAddr: bigint) {
  const target = pathToCString(pathArg(p, targetAddr));
  const r = resolveAt(p, dirfd, pathArg(p, pathAddr), false);
  return inParent(
    r,
    true,
    (dir, name) => hostSyscall(NR.symlinkat, bufferAddress(target), dir, bufferAddress(name)),
  );
}

function readlinkAt(p: Process, dirfd: bigint, pathAddr: bigint, buf: bigint, size: bigint) {
  const path = throughProc(p, dirfd, pathArg(p, pathAddr), false);
  if (BigInt.asIntN(64, size) <= 0n) throw new SyscallError(E.EINVAL);
  const guest = path === "" ? "" : specialName(p, dirfd, path);
  if (isProcPath(guest)) {
    const target = procReadlink(p, guest);
    const n = Math.min(target.length, Number(size));
    p.mem.slice(buf, n).set(target.subarray(0, n));
    return n;
  }
  const r = resolveAt(p, dirfd, path, false);
  if (!r.mount) throw new SyscallError(E.EINVAL); // a directory that only leads to mounts
  const out = p.mem.hostAddress(buf, size);
  return inParent(
    r,
    false,
    (dir, name) => hostSyscall(NR.readlinkat, dir, bufferAddress(name), out, size),
  );
}

function accessAt(p: Process, dirfd: bigint, pathAddr: bigint, mode: bigint, flags: number) {
  const follow = !(flags & AT_SYMLINK_NOFOLLOW);
  const path = throughProc(p, dirfd, pathArg(p, pathAddr), follow);
  const guest = path === "" ? "" : specialName(p, dirfd, path);
  if (isProcPath(guest)) {
    procAccess(p, guest, Number(mode), follow);
    return 0;
  }
  const r = resolveAt(p, dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW));
  if (!r.mount) return Number(mode) & 2 ? -E.EROFS : 0;
  if (Number(mode) & 2 && r.mount.readOnly) {
    const exists = statAt(r, true);
    return exists < 0n ? exists : BigInt(-E.EROFS);
  }
  return inParent(
    r,
    false,
    (dir, name) =>
      hostSyscall(NR.faccessat2, dir, bufferAddress(name), mode, flags & AT_SYMLINK_NOFOLLOW),
  );
}

function makePipe(p: Process, fds: bigint, flags: number) {
  const out = p.mem.slice(fds, 8);
  const host = new Int32Array(2);
  const r = hostSyscall(NR.pipe2, bufferAddress(new Uint8Array(host.buffer)), flags | O_CLOEXEC);
  if (r < 0n) return r;
  const cloexec = (flags & O_CLOEXEC) !== 0;
  const a = p.fds.install(new OpenFile(host[0]), cloexec);
  const b = p.fds.install(new OpenFile(host[1]), cloexec);
  new DataView(out.buffer, out.byteOffset, 8).setInt32(0, a, true);
  new DataView(out.buffer, out.byteOffset, 8).setInt32(4, b, true);
  return 0;
}
