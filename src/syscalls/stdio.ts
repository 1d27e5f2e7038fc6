/**
 * Reading, writing and inspecting open fds (stdio, files, pipes).
 * Data moves between the host fd and guest memory directly, no copies.
 * @module
 */
import { TTY_GROUP_IOCTLS, ttyGroupIoctl } from "./tty.ts";
import { E, SyscallError } from "./errno.ts";
import { noteRead } from "../loader/relro.ts";
import { bufferAddress, HOST_NR, hostSyscall } from "./host.ts";
import type { Process, SyscallCall, SyscallModule } from "./registry.ts";
import type { FileOps } from "./fdtable.ts";
import { monotonicNs, pollFd, signalsOf } from "./signal.ts";
import { type ThreadHost, threadsOf } from "./thread.ts";
import { fileSizeAllows } from "./limits.ts";

const SIGPIPE = 13;

const IOV_MAX = 1024;
const STAT_SIZE = 144;

/** ioctl requests passed through, with the size of their argument. */
const IOCTLS: Record<number, number> = {
  0x5401: 36, // TCGETS
  0x5402: 36, // TCSETS
  0x5403: 36, // TCSETSW
  0x5404: 36, // TCSETSF
  0x5413: 8, // TIOCGWINSZ
  0x5414: 8, // TIOCSWINSZ
  0x541b: 4, // FIONREAD
  0x5421: 4, // FIONBIO (libuv's way to make an fd non-blocking)
};
const FIONCLEX = 0x5450, FIOCLEX = 0x5451;

/** A write to a pipe or socket with no reader also raises SIGPIPE, as on Linux. */
export function sigpipe(p: Process, r: bigint): bigint {
  if (r === BigInt(-E.EPIPE)) {
    signalsOf(p).raise({ signo: SIGPIPE, code: 0, pid: p.pid, uid: Deno.uid() ?? 0 });
  }
  return r;
}

/** Linux's ERESTARTSYS: the VM makes it EINTR, or restarts the call for an SA_RESTART handler. */
export const ERESTARTSYS = 512;
const F_GETFL = 3, O_NONBLOCK = 0o4000, POLLIN = 1, POLLOUT = 4, NR_FCNTL = 72;

/**
 * Before a read that could block (a blocking fd with nothing to read): wait
 * here, so a signal can interrupt it (ERESTARTSYS) and other threads are
 * served meanwhile, instead of blocking the host thread in read(2). On a
 * non-main thread it parks instead: true then, and the call must return
 * at once (it runs again when the fd is readable).
 */
export function awaitReadable(p: Process, hostFd: number): boolean {
  return awaitReady(p, hostFd, POLLIN);
}

/** As {@linkcode awaitReadable}, before a write that could block (until there is room). */
export function awaitWritable(p: Process, hostFd: number): boolean {
  return awaitReady(p, hostFd, POLLOUT);
}

function awaitReady(p: Process, hostFd: number, events: number): boolean {
  const fl = hostSyscall(NR_FCNTL, hostFd, F_GETFL);
  if (fl < 0n || (fl & BigInt(O_NONBLOCK)) !== 0n) return false;
  const t = threadsOf(p);
  if (t && !t.onMain) return parkUntilReady(t, hostFd, events);
  if (signalsOf(p).waitFd(hostFd, events) === "signal") throw new SyscallError(ERESTARTSYS);
  return false;
}

/** Whether host fd `fd` polls ready for `events` now (an error counts: the read reports it). */
export function readyNow(fd: number, events: number): boolean {
  const r = pollFd(fd, events, 0n);
  return r > 0n || (r < 0n && r !== BigInt(-E.EINTR));
}

/**
 * On a thread other than the main one, a read (or write) that would block
 * parks it (so the main thread goes on running and serving), checks every
 * 10 ms, and runs the call again once the fd is ready. True if parked.
 */
function parkUntilReady(t: ThreadHost, fd: number, events: number): boolean {
  if (readyNow(fd, events)) return false;
  const tid = t.current;
  // The fd is watched too: where the main thread sleeps on parked waits'
  // fds, the thread learns at once that it is ready.
  const watch = new Uint8Array(8), wv = new DataView(watch.buffer);
  wv.setInt32(0, fd, true);
  wv.setInt16(4, events, true);
  const check = () => {
    if (readyNow(fd, events)) return t.restart(tid);
    t.park(monotonicNs() + 10_000_000n, check, interrupt, watch);
  };
  const interrupt = () => t.resume(tid, BigInt(-ERESTARTSYS));
  t.park(monotonicNs() + 10_000_000n, check, interrupt, watch);
  return true;
}

const NR_PWRITEV2 = 328, RWF_NOWAIT = 8n, EAGAIN = 11, EOPNOTSUPP = 95;
/** What a pipe takes at once when poll says it has room: one page-sized buffer. */
const PIPE_BUF = 4096n;

/**
 * A write to a blocking pipe or socket, as Linux does it: it returns once
 * everything is written, waiting for room as often as needed; a signal
 * ends the wait with the bytes written so far (ERESTARTSYS if none). The
 * host thread never blocks in write(2): each step is an RWF_NOWAIT write,
 * and the waits are the interruptible ones reads use. `iovs` (host
 * iovecs, `count` of them) is advanced in place.
 */
function blockingWrite(p: Process, hostFd: number, iovs: Uint8Array, count: number): bigint {
  const v = new DataView(iovs.buffer, iovs.byteOffset, iovs.byteLength);
  let first = 0, done = 0n, total = 0n;
  for (let i = 0; i < count; i++) total += v.getBigUint64(i * 16 + 8, true);
  const t = threadsOf(p);
  // Asked only when it matters (a write that does not fit), not on every write.
  let fl: bigint | undefined;
  const blocking = () => {
    fl ??= hostSyscall(NR_FCNTL, hostFd, F_GETFL);
    return fl >= 0n && (fl & BigInt(O_NONBLOCK)) === 0n;
  };
  // A call that came exitless may not park once it has written: a large
  // one takes the doorbell first (a small one finds out before writing).
  if (t?.polled && total > PIPE_BUF && blocking()) t.park(0n, () => {}); // throws WouldBlock
  const hostWritev = (flags: bigint) =>
    hostSyscall(
      NR_PWRITEV2,
      hostFd,
      bufferAddress(iovs) + BigInt(first * 16),
      count - first,
      -1n,
      0n,
      flags,
    );
  /** Writes what fits; the call's result, or undefined when it must wait for room. */
  const step = (): bigint | undefined => {
    for (;;) {
      let r = hostWritev(RWF_NOWAIT);
      // A kernel whose pipes know no RWF_NOWAIT: the rest in one blocking write.
      if (r === BigInt(-EOPNOTSUPP)) r = hostWritev(0n);
      if (r < 0n) {
        if (r === BigInt(-EAGAIN) && blocking()) return undefined;
        return done > 0n ? done : sigpipe(p, r);
      }
      done += r;
      if (done >= total || !blocking()) return done;
      // Past the bytes written: whole iovecs, then into the next one.
      for (let left = r; left > 0n;) {
        const len = v.getBigUint64(first * 16 + 8, true);
        if (left < len) {
          v.setBigUint64(first * 16, v.getBigUint64(first * 16, true) + left, true);
          v.setBigUint64(first * 16 + 8, len - left, true);
          break;
        }
        left -= len;
        first++;
      }
    }
  };
  const interrupted = () => {
    if (done > 0n) return done;
    throw new SyscallError(ERESTARTSYS);
  };
  let r = step();
  if (r !== undefined) return r;
  // Exitless with some written: it cannot park now, so a short write.
  if (t?.polled && done > 0n) return done;
  if (t && !t.onMain) {
    const tid = t.current;
    const watch = new Uint8Array(8), wv = new DataView(watch.buffer);
    wv.setInt32(0, hostFd, true);
    wv.setInt16(4, POLLOUT, true);
    const check = () => {
      r = step();
      if (r !== undefined) t.resume(tid, r);
      else t.park(monotonicNs() + 10_000_000n, check, interrupt, watch);
    };
    const interrupt = () => t.resume(tid, done > 0n ? done : BigInt(-ERESTARTSYS));
    t.park(monotonicNs() + 10_000_000n, check, interrupt, watch);
    return 0n; // parked: resume gives the result
  }
  for (;;) {
    if (signalsOf(p).waitFd(hostFd, POLLOUT) === "signal") return interrupted();
    r = step();
    if (r !== undefined) return r;
  }
}

/** One host iovec for `count` bytes at guest `buf`. */
function oneIovec(p: Process, buf: bigint, count: bigint): Uint8Array {
  const iov = new Uint8Array(16), v = new DataView(iov.buffer);
  v.setBigUint64(0, p.mem.hostAddress(buf, count), true);
  v.setBigUint64(8, count, true);
  return iov;
}

function rw(nr: number) {
  return ({ args: [fd, buf, count], process: p }: SyscallCall) => {
    const file = p.fds.get(fd);
    if (file.ops) {
      const iov = [[buf, count] as const];
      return nr === HOST_NR.read ? file.ops.read(p, iov) : file.ops.write(p, iov);
    }
    if (
      nr === HOST_NR.read && count !== 0n && !file.neverBlocks && awaitReadable(p, file.hostFd)
    ) return 0;
    if (nr === HOST_NR.write && count !== 0n && file.canBlock) {
      return blockingWrite(p, file.hostFd, oneIovec(p, buf, count), 1);
    }
    if (nr === HOST_NR.write) count = fileSizeAllows(p, file, undefined, count);
    const r = sigpipe(p, hostSyscall(nr, file.hostFd, p.mem.hostAddress(buf, count), count));
    // ld.so reading a library's headers: where its RELRO will be (src/loader/relro.ts).
    if (nr === HOST_NR.read && r >= 64n) {
      noteRead(p.mem, Number(fd), file.hostFd, Number(buf), Number(r));
    }
    return r;
  };
}

/** Translates a guest iovec array into a host one, checking every buffer. */
export function hostIovecs(call: SyscallCall): [Uint8Array, number] {
  const [, iov, n] = call.args;
  const count = Number(BigInt.asIntN(32, n));
  if (count < 0 || count > IOV_MAX) throw new SyscallError(E.EINVAL);
  const mem = call.process.mem;
  const out = new Uint8Array(count * 16);
  const v = new DataView(out.buffer);
  const src = mem.check(iov, count * 16);
  for (let i = 0; i < count; i++) {
    const base = mem.view.getBigUint64(src + i * 16, true);
    const len = mem.view.getBigUint64(src + i * 16 + 8, true);
    if (len > 0x7fffffffffffffffn) throw new SyscallError(E.EINVAL);
    v.setBigUint64(i * 16, len ? mem.hostAddress(base, len) : 0n, true);
    v.setBigUint64(i * 16 + 8, len, true);
  }
  return [out, count];
}

/** The bytes `count` host iovecs hold. */
function iovTotal(iovs: Uint8Array, count: number): bigint {
  const v = new DataView(iovs.buffer, iovs.byteOffset);
  let total = 0n;
  for (let i = 0; i < count; i++) total += v.getBigUint64(i * 16 + 8, true);
  return total;
}

/** Cuts host iovecs to `max` bytes in all; the iovec count left. */
function clampIovecs(iovs: Uint8Array, count: number, max: bigint): number {
  const v = new DataView(iovs.buffer, iovs.byteOffset);
  for (let i = 0; i < count; i++) {
    const len = v.getBigUint64(i * 16 + 8, true);
    if (len >= max) {
      v.setBigUint64(i * 16 + 8, max, true);
      return i + 1;
    }
    max -= len;
  }
  return count;
}

function rwv(nr: number) {
  return (call: SyscallCall) => {
    const file = call.process.fds.get(call.args[0]);
    if (file.ops) return specialRwv(call, file.ops, nr);
    const [iovs, n] = hostIovecs(call);
    let count = n;
    if (
      nr === HOST_NR.readv && count > 0 && !file.neverBlocks &&
      awaitReadable(call.process, file.hostFd)
    ) return 0;
    if (nr === HOST_NR.writev && count > 0 && file.canBlock) {
      return blockingWrite(call.process, file.hostFd, iovs, count);
    }
    // preadv/pwritev(2) take the offset (and flags) next; readv/writev ignore them.
    const [, , , a3, a4, a5] = call.args;
    if (nr === HOST_NR.writev || nr === HOST_NR.pwritev || nr === HOST_NR.pwritev2) {
      const at = nr === HOST_NR.writev ? undefined : BigInt.asIntN(64, a3);
      count = clampIovecs(
        iovs,
        count,
        fileSizeAllows(call.process, file, at, iovTotal(iovs, count)),
      );
    }
    return sigpipe(
      call.process,
      hostSyscall(nr, file.hostFd, bufferAddress(iovs), count, a3, a4, a5),
    );
  };
}

/** readv/writev (and the positioned forms: ESPIPE) of a file with its own read and write. */
function specialRwv(call: SyscallCall, ops: FileOps, nr: number): number | bigint {
  const [, iov, n] = call.args, p = call.process;
  if (nr !== HOST_NR.readv && nr !== HOST_NR.writev) throw new SyscallError(E.ESPIPE);
  const count = Number(BigInt.asIntN(32, n));
  if (count < 0 || count > IOV_MAX) throw new SyscallError(E.EINVAL);
  const src = p.mem.check(iov, count * 16), v = p.mem.view;
  const list: [bigint, bigint][] = [];
  for (let i = 0; i < count; i++) {
    list.push([v.getBigUint64(src + i * 16, true), v.getBigUint64(src + i * 16 + 8, true)]);
  }
  return nr === HOST_NR.readv ? ops.read(p, list) : ops.write(p, list);
}

function fstat({ args: [fd, buf], process: p }: SyscallCall) {
  const file = p.fds.get(fd);
  return hostSyscall(HOST_NR.fstat, file.hostFd, p.mem.hostAddress(buf, STAT_SIZE));
}

/** Reading and writing any open fd: read/write and their vector and positioned forms, fstat, ioctl, lseek, sendfile, close. */
export const stdioModule: SyscallModule = {
  name: "stdio",
  partial: {
    ioctl:
      "terminal requests TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ, TIOCSWINSZ, and TIOCGPGRP, TIOCSPGRP and TIOCGSID (a foreground group of the guest's own: tty.ts), " +
      "and FIONREAD, FIONBIO, FIOCLEX and FIONCLEX; others ENOTTY",
  },

  handlers: {
    read: rw(HOST_NR.read),
    write: rw(HOST_NR.write),
    readv: rwv(HOST_NR.readv),
    writev: rwv(HOST_NR.writev),
    preadv: rwv(HOST_NR.preadv),
    pwritev: rwv(HOST_NR.pwritev),
    preadv2: rwv(HOST_NR.preadv2),
    pwritev2: rwv(HOST_NR.pwritev2),
    fstat,
    ioctl({ args: [fd, req, arg], process: p }) {
      const file = p.fds.get(fd), r = Number(req & 0xffffffffn);
      // Close-on-exec is the guest's own flag (the fd table's), not the host fd's.
      if (r === FIOCLEX || r === FIONCLEX) {
        p.fds.setCloexec(fd, r === FIOCLEX);
        return 0;
      }
      if (TTY_GROUP_IOCTLS.has(r)) return ttyGroupIoctl(p, file, r, arg);
      const size = IOCTLS[r];
      if (size === undefined) throw new SyscallError(E.ENOTTY);
      return hostSyscall(HOST_NR.ioctl, file.hostFd, req, p.mem.hostAddress(arg, size));
    },
    lseek({ args: [fd, off, whence], process: p }) {
      return hostSyscall(HOST_NR.lseek, p.fds.get(fd).hostFd, off, whence);
    },
    sendfile({ args: [outFd, inFd, offset, count], process: p }) {
      const out = p.fds.get(outFd), input = p.fds.get(inFd);
      const off = offset ? p.mem.hostAddress(offset, 8) : 0n;
      count = fileSizeAllows(p, out, undefined, count);
      return hostSyscall(HOST_NR.sendfile, out.hostFd, input.hostFd, off, count);
    },
    close({ args: [fd], process: p }) {
      p.fds.close(fd);
      return 0;
    },
  },
};
