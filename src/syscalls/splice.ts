/**
 * Moving data through pipes without a copy in the guest: `splice`, `tee`
 * and `vmsplice`, and the pipe-related `fcntl` commands (`F_GETPIPE_SZ`,
 * `F_SETPIPE_SZ`) with `F_NOTIFY`, which fs.ts's fcntl hands here.
 *
 * Why not a plain pass-through: the host kernel does the work on the host
 * fds, but a splice that waits (an empty pipe, a full one) would hold the
 * host thread that serves every vCPU. Each host call is therefore made
 * with SPLICE_F_NONBLOCK, and when the guest's own call would have waited,
 * the wait is the one blocking reads and writes use (stdio.ts): the main
 * thread serves the others meanwhile, any other thread parks, and a
 * signal interrupts it (ERESTARTSYS).
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import type { OpenFile } from "./fdtable.ts";
import { bufferAddress, hostFstat, hostSyscall } from "./host.ts";
import type { Process, SyscallCall, SyscallModule } from "./registry.ts";
import { awaitReadable, awaitWritable, hostIovecs, readyNow, sigpipe } from "./stdio.ts";

const NR = { fcntl: 72, splice: 275, tee: 276, vmsplice: 278 } as const;
const SPLICE_F_NONBLOCK = 2n;
const F_GETFL = 3, O_NONBLOCK = 0o4000, POLLIN = 1, POLLOUT = 4;
const F_NOTIFY = 1026, F_SETPIPE_SZ = 1031, F_GETPIPE_SZ = 1032;
const DN_MULTISHOT = 0x80000000;
const S_IFMT = 0o170000, S_IFDIR = 0o040000;

function nonblocking(file: OpenFile): boolean {
  const fl = hostSyscall(NR.fcntl, file.hostFd, F_GETFL);
  return fl >= 0n && (fl & BigInt(O_NONBLOCK)) !== 0n;
}

/**
 * Runs `op` (a host splice, tee or vmsplice given its flags) without
 * blocking the host: when the guest's call would wait (no SPLICE_F_NONBLOCK,
 * no O_NONBLOCK fd), it waits for data in `from` or room in `to` and tries
 * again. Returns the result, or 0 when the thread was parked (its call is
 * made again once the fd is ready).
 */
function withoutBlocking(
  p: Process,
  from: OpenFile | undefined,
  to: OpenFile | undefined,
  flags: bigint,
  op: (flags: bigint) => bigint,
): bigint {
  for (;;) {
    const r = op(flags | SPLICE_F_NONBLOCK);
    if (r !== BigInt(-E.EAGAIN) || flags & SPLICE_F_NONBLOCK) return r;
    if ((from && nonblocking(from)) || (to && nonblocking(to))) return r;
    if (from?.canBlock && !readyNow(from.hostFd, POLLIN)) {
      if (awaitReadable(p, from.hostFd)) return 0n;
    } else if (to?.canBlock && !readyNow(to.hostFd, POLLOUT)) {
      if (awaitWritable(p, to.hostFd)) return 0n;
    } else return r;
  }
}

/** A guest loff_t pointer as a host one (NULL stays NULL). */
function offset(p: Process, addr: bigint): bigint {
  return addr ? p.mem.hostAddress(addr, 8) : 0n;
}

/**
 * fcntl's F_GETPIPE_SZ and F_SETPIPE_SZ (the host pipe's; EBADF for
 * anything else, as Linux) and F_NOTIFY (accepted for a directory, but no
 * signal is ever sent).
 */
export function pipeFcntl(file: OpenFile, cmd: number, arg: bigint): bigint | number {
  if (cmd === F_GETPIPE_SZ || cmd === F_SETPIPE_SZ) {
    return hostSyscall(NR.fcntl, file.hostFd, cmd, BigInt.asUintN(32, arg));
  }
  if (cmd !== F_NOTIFY) throw new SyscallError(E.EINVAL);
  // Removing every notification needs no directory (Linux's dnotify_flush).
  if ((Number(BigInt.asUintN(32, arg)) & ~DN_MULTISHOT) === 0) return 0;
  const st = hostFstat(file.hostFd);
  if (typeof st === "number") return st;
  if ((st.mode & S_IFMT) !== S_IFDIR) throw new SyscallError(E.ENOTDIR);
  return 0;
}

/** splice, tee and vmsplice. */
export const spliceModule: SyscallModule = {
  name: "splice",
  partial: {
    vmsplice: "SPLICE_F_GIFT is ignored (pages are referenced, as without it)",
  },
  handlers: {
    splice({ args: [fdIn, offIn, fdOut, offOut, len, flags], process: p }: SyscallCall) {
      const from = p.fds.get(fdIn), to = p.fds.get(fdOut);
      const hostIn = offset(p, offIn), hostOut = offset(p, offOut);
      const r = withoutBlocking(
        p,
        offIn ? undefined : from,
        offOut ? undefined : to,
        flags,
        (f) => hostSyscall(NR.splice, from.hostFd, hostIn, to.hostFd, hostOut, len, f),
      );
      return sigpipe(p, r);
    },
    tee({ args: [fdIn, fdOut, len, flags], process: p }: SyscallCall) {
      const from = p.fds.get(fdIn), to = p.fds.get(fdOut);
      return withoutBlocking(
        p,
        from,
        to,
        flags,
        (f) => hostSyscall(NR.tee, from.hostFd, to.hostFd, len, f),
      );
    },
    vmsplice(call: SyscallCall) {
      const { args: [fd, , , flags], process: p } = call;
      const file = p.fds.get(fd);
      const [iovs, count] = hostIovecs(call);
      // Which way the data goes is the pipe end's: its access mode.
      const fl = hostSyscall(NR.fcntl, file.hostFd, F_GETFL);
      const writes = fl >= 0n && (fl & 3n) === 1n;
      const r = withoutBlocking(
        p,
        writes ? undefined : file,
        writes ? file : undefined,
        flags,
        (f) => hostSyscall(NR.vmsplice, file.hostFd, bufferAddress(iovs), count, f),
      );
      return sigpipe(p, r);
    },
  },
};
