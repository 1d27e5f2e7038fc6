/**
 * Extended attributes (`ls -l` asks for ACLs and SELinux labels). A path is
 * resolved in the guest's mounts and reached through /proc/self/fd of an
 * O_PATH descriptor opened below the mount, so a guest names only files it
 * was granted; changes need a writable mount (EROFS otherwise).
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { bufferAddress, hostSyscall } from "./host.ts";
import type { Process, SyscallModule } from "./registry.ts";
import { pathArg, resolveAt, throughProc } from "./fs.ts";
import { isProcPath, procAccess } from "./procfs.ts";
import { OPEN_FLAGS, openBeneath } from "../vfs/mounts.ts";
import { pathToCString } from "../vfs/path.ts";

const NR = {
  close: 3,
  setxattr: 188,
  getxattr: 191,
  listxattr: 194,
  removexattr: 197,
  fsetxattr: 190,
  fgetxattr: 193,
  flistxattr: 196,
  fremovexattr: 199,
} as const;
const AT_FDCWD = -100n, O_CLOEXEC = 0o2000000;
const XATTR_NAME_MAX = 255, XATTR_SIZE_MAX = 65536;

/**
 * Runs `op` on the host path "/proc/self/fd/N" of the guest path at `addr`
 * (its final symlink kept when `follow` is false).
 */
function onPath(
  p: Process,
  addr: bigint,
  follow: boolean,
  write: boolean,
  op: (hostPath: bigint) => bigint,
): bigint {
  const path = throughProc(p, AT_FDCWD, pathArg(p, addr), follow);
  // /proc has no attributes and takes none, as Linux's (EOPNOTSUPP to set).
  if (isProcPath(path)) {
    procAccess(p, path, 0, follow);
    if (write) throw new SyscallError(E.EOPNOTSUPP);
    return -1n;
  }
  const r = resolveAt(p, AT_FDCWD, path, follow);
  // A directory that only leads to mounts has no attributes and takes none.
  if (!r.mount) {
    if (write) throw new SyscallError(E.EROFS);
    return -1n;
  }
  if (write && r.mount.readOnly) throw new SyscallError(E.EROFS);
  const flags = OPEN_FLAGS.O_PATH | O_CLOEXEC | (follow ? 0 : OPEN_FLAGS.O_NOFOLLOW);
  const fd = openBeneath(r.mount.rootFd, r.rel === "" ? "." : r.rel, flags);
  try {
    return op(bufferAddress(pathToCString(`/proc/self/fd/${fd}`)));
  } finally {
    hostSyscall(NR.close, fd);
  }
}

/** An attribute name argument, length-checked as Linux does. */
function nameArg(p: Process, addr: bigint): bigint {
  const nul = p.mem.cBytes(addr, XATTR_NAME_MAX + 1, E.ERANGE).length;
  if (nul === 0) throw new SyscallError(E.ERANGE);
  return p.mem.hostAddress(addr, nul + 1);
}

/** A value or list buffer: NULL with size 0 asks for the size. */
function bufArg(p: Process, addr: bigint, size: bigint): [bigint, bigint] {
  const n = size > BigInt(XATTR_SIZE_MAX) ? BigInt(XATTR_SIZE_MAX) : size;
  return n === 0n ? [0n, 0n] : [p.mem.hostAddress(addr, n), n];
}

function get(p: Process, args: readonly bigint[], follow: boolean): bigint {
  const [path, name, value, size] = args;
  const n = nameArg(p, name), [buf, len] = bufArg(p, value, size);
  const r = onPath(p, path, follow, false, (h) => hostSyscall(NR.getxattr, h, n, buf, len));
  return r === -1n ? BigInt(-61) /* ENODATA */ : r;
}

function list(p: Process, args: readonly bigint[], follow: boolean): bigint {
  const [path, out, size] = args;
  const [buf, len] = bufArg(p, out, size);
  const r = onPath(p, path, follow, false, (h) => hostSyscall(NR.listxattr, h, buf, len));
  return r === -1n ? 0n : r;
}

function set(p: Process, args: readonly bigint[], follow: boolean): bigint {
  const [path, name, value, size, flags] = args;
  const n = nameArg(p, name);
  if (size > BigInt(XATTR_SIZE_MAX)) throw new SyscallError(E.E2BIG);
  const [buf, len] = bufArg(p, value, size);
  return onPath(p, path, follow, true, (h) => hostSyscall(NR.setxattr, h, n, buf, len, flags));
}

function remove(p: Process, args: readonly bigint[], follow: boolean): bigint {
  const [path, name] = args;
  const n = nameArg(p, name);
  return onPath(p, path, follow, true, (h) => hostSyscall(NR.removexattr, h, n));
}

/** Whether a guest fd's file may change (not on a read-only mount). */
function writableFd(p: Process, fd: bigint): number {
  const f = p.fds.get(fd);
  if (f.path !== undefined && p.mounts.mountFor(f.path)?.readOnly) {
    throw new SyscallError(E.EROFS);
  }
  return f.hostFd;
}

/** The xattr module. */
export const xattrModule: SyscallModule = {
  name: "xattr",
  partial: {
    getxattr: "files on mounts; /dev and /proc specials are not reachable by path",
  },
  handlers: {
    getxattr: ({ args, process: p }) => get(p, args, true),
    lgetxattr: ({ args, process: p }) => get(p, args, false),
    listxattr: ({ args, process: p }) => list(p, args, true),
    llistxattr: ({ args, process: p }) => list(p, args, false),
    setxattr: ({ args, process: p }) => set(p, args, true),
    lsetxattr: ({ args, process: p }) => set(p, args, false),
    removexattr: ({ args, process: p }) => remove(p, args, true),
    lremovexattr: ({ args, process: p }) => remove(p, args, false),
    fgetxattr({ args: [fd, name, value, size], process: p }) {
      const n = nameArg(p, name), [buf, len] = bufArg(p, value, size);
      return hostSyscall(NR.fgetxattr, p.fds.get(fd).hostFd, n, buf, len);
    },
    flistxattr({ args: [fd, out, size], process: p }) {
      const [buf, len] = bufArg(p, out, size);
      return hostSyscall(NR.flistxattr, p.fds.get(fd).hostFd, buf, len);
    },
    fsetxattr({ args: [fd, name, value, size, flags], process: p }) {
      const h = writableFd(p, fd), n = nameArg(p, name);
      if (size > BigInt(XATTR_SIZE_MAX)) throw new SyscallError(E.E2BIG);
      const [buf, len] = bufArg(p, value, size);
      return hostSyscall(NR.fsetxattr, h, n, buf, len, flags);
    },
    fremovexattr({ args: [fd, name], process: p }) {
      const h = writableFd(p, fd);
      return hostSyscall(NR.fremovexattr, h, nameArg(p, name));
    },
  },
};
