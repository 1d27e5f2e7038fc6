/**
 * signalfd and signalfd4: a file whose read returns the process's pending
 * signals of a mask as `struct signalfd_siginfo` records.
 *
 * Why a host eventfd behind it: poll, select, epoll and the main thread's
 * watch on parked waits all work on host fds, so a signalfd is a host
 * eventfd that the signal state keeps readable exactly while a watched
 * signal is pending ({@linkcode SignalState.onPendingChange}); its read is
 * hermitux's own ({@linkcode FileOps}), taking the signals from the signal
 * state. A blocking read waits as other blocking calls do (the main thread
 * serving the others, any other thread parked), and a signal that must be
 * acted on interrupts it (ERESTARTSYS).
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { type FileOps, type GuestIovec, OpenFile } from "./fdtable.ts";
import { bufferAddress, hostSyscall } from "./host.ts";
import type { Process, SyscallModule } from "./registry.ts";
import { bit, monotonicNs, type SigInfo, signalsOf, type SignalState } from "./signal.ts";
import { ERESTARTSYS } from "./stdio.ts";
import { threadsOf } from "./thread.ts";

const NR = { read: 0, write: 1, fcntl: 72, eventfd2: 290 } as const;
const SFD_NONBLOCK = 0o4000, SFD_CLOEXEC = 0o2000000;
const F_GETFL = 3, O_NONBLOCK = 0o4000, POLLIN = 1;
/** sizeof(struct signalfd_siginfo). */
const RECORD = 128;
/** SIGKILL and SIGSTOP are never read from a signalfd. */
const UNWATCHABLE = bit(9) | bit(19);
/** SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV (and SIGSYS): dequeued first, as Linux does. */
const SYNCHRONOUS = bit(4) | bit(5) | bit(7) | bit(8) | bit(11) | bit(31);
/** How often a waiting read looks again when nothing woke it. */
const RECHECK_NS = 10_000_000n;
const SI_USER = 0, SI_KERNEL = 0x80, SI_TIMER = -2, SI_SIGIO = -5;

/** One signalfd: its mask and the host eventfd that shows it readable. */
class SignalFd implements FileOps {
  /** Whether the eventfd holds a count (is readable) now. */
  #armed = false;

  constructor(readonly hostFd: number, public mask: bigint) {}

  /** Makes the eventfd readable exactly while a watched signal is pending in `s`. */
  sync(s: SignalState): void {
    const ready = (s.pendingOf("any") & this.mask) !== 0n;
    if (ready === this.#armed) return;
    const one = new BigUint64Array([1n]);
    // The count is 1 when armed: neither call can block.
    hostSyscall(
      ready ? NR.write : NR.read,
      this.hostFd,
      bufferAddress(new Uint8Array(one.buffer)),
      8,
    );
    this.#armed = ready;
  }

  read(p: Process, iov: GuestIovec): number | bigint {
    let total = 0n;
    for (const [addr, len] of iov) {
      if (len) p.mem.check(addr, len);
      total += len;
    }
    const count = Number(total / BigInt(RECORD));
    if (count === 0) throw new SyscallError(E.EINVAL);
    const s = signalsOf(p), t = threadsOf(p), tid = t?.current ?? p.pid;
    for (;;) {
      const out: Uint8Array[] = [];
      for (let sig = this.#next(s, tid); sig && out.length < count; sig = this.#next(s, tid)) {
        out.push(record(s.take(sig, t ? tid : undefined)));
      }
      if (out.length) return scatter(p, iov, out);
      const fl = hostSyscall(NR.fcntl, this.hostFd, F_GETFL);
      if (fl >= 0n && (fl & BigInt(O_NONBLOCK)) !== 0n) throw new SyscallError(E.EAGAIN);
      if (this.#wait(p, s, tid)) return 0; // parked: the read runs again when one comes
    }
  }

  write(): number {
    throw new SyscallError(E.EINVAL);
  }

  /** The signal a read of thread `tid` takes next (0: none). */
  #next(s: SignalState, tid: number): number {
    let ready = s.pendingOf(tid) & this.mask;
    if (!ready) return 0;
    if (ready & SYNCHRONOUS) ready &= SYNCHRONOUS;
    let sig = 1;
    while (!(ready & bit(sig))) sig++;
    return sig;
  }

  /**
   * Waits until thread `tid` has a watched signal: on the main thread here
   * (true never), serving the others; any other thread parks (true), and its
   * read runs again. A signal to act on ends the wait with ERESTARTSYS.
   */
  #wait(p: Process, s: SignalState, tid: number): boolean {
    const has = () => this.#next(s, tid) !== 0;
    const t = threadsOf(p);
    if (t && !t.onMain) {
      const watch = new Uint8Array(8), wv = new DataView(watch.buffer);
      wv.setInt32(0, this.hostFd, true);
      wv.setInt16(4, POLLIN, true);
      const check = () => {
        if (has()) return t.restart(tid);
        t.park(monotonicNs() + RECHECK_NS, check, interrupt, watch);
      };
      const interrupt = () => t.resume(tid, BigInt(-ERESTARTSYS));
      t.park(monotonicNs() + RECHECK_NS, check, interrupt, watch);
      return true;
    }
    for (;;) {
      const r = s.sleep(1, monotonicNs() + RECHECK_NS, has); // CLOCK_MONOTONIC
      if (r === "signal" || r === "timeout") throw new SyscallError(ERESTARTSYS);
      if (has()) return false;
    }
  }
}

/** The signalfds of each signal state, kept readable by it. */
const watchers = new WeakMap<SignalState, Set<SignalFd>>();

function watch(s: SignalState, fd: SignalFd): void {
  let set = watchers.get(s);
  if (!set) {
    const all = set = new Set();
    watchers.set(s, set);
    s.onPendingChange = () => {
      for (const f of all) f.sync(s);
    };
  }
  set.add(fd);
  fd.sync(s);
}

/**
 * A siginfo as `struct signalfd_siginfo`: the fields Linux's
 * signalfd_copyinfo copies for its layout (siginfo_layout).
 */
function record(info: SigInfo): Uint8Array {
  const si = new Uint8Array(RECORD), sv = new DataView(si.buffer);
  if (info.raw) si.set(info.raw.subarray(0, RECORD));
  else {
    sv.setInt32(0, info.signo, true);
    sv.setInt32(8, info.code, true);
    if (info.addr !== undefined) sv.setBigUint64(16, info.addr, true);
    else if (info.pid !== undefined) {
      sv.setInt32(16, info.pid, true);
      sv.setUint32(20, info.uid ?? 0, true);
    }
  }
  const out = new Uint8Array(RECORD), v = new DataView(out.buffer);
  const signo = sv.getInt32(0, true), code = sv.getInt32(8, true);
  v.setUint32(0, signo, true);
  v.setInt32(4, sv.getInt32(4, true), true); // errno
  v.setInt32(8, code, true);
  const kill = () => {
    v.setUint32(12, sv.getUint32(16, true), true); // pid
    v.setUint32(16, sv.getUint32(20, true), true); // uid
  };
  if (code > SI_USER && code < SI_KERNEL) {
    // Kernel-made: a fault (the address), a child's change, or SIGPOLL.
    if (signo === 17) { // SIGCHLD
      kill();
      v.setInt32(40, sv.getInt32(24, true), true); // status
      v.setBigUint64(56, sv.getBigUint64(32, true), true); // utime
      v.setBigUint64(64, sv.getBigUint64(40, true), true); // stime
    } else if ([4, 5, 7, 8, 11].includes(signo)) {
      v.setBigUint64(72, sv.getBigUint64(16, true), true); // addr
    } else if (signo === 29) { // SIGPOLL
      v.setUint32(28, Number(sv.getBigInt64(16, true) & 0xffffffffn), true); // band
      v.setInt32(20, sv.getInt32(24, true), true); // fd
    } else kill();
  } else if (code === SI_TIMER) {
    v.setUint32(24, sv.getUint32(16, true), true); // tid
    v.setUint32(32, sv.getUint32(20, true), true); // overrun
    v.setBigUint64(48, sv.getBigUint64(24, true), true); // ptr
    v.setInt32(44, sv.getInt32(24, true), true); // int
  } else if (code === SI_SIGIO) {
    v.setUint32(28, Number(sv.getBigInt64(16, true) & 0xffffffffn), true);
    v.setInt32(20, sv.getInt32(24, true), true);
  } else if (code < 0) {
    // Queued (sigqueue, tkill): the sender and the value.
    kill();
    v.setBigUint64(48, sv.getBigUint64(24, true), true); // ptr
    v.setInt32(44, sv.getInt32(24, true), true); // int
  } else kill();
  return out;
}

/** Writes `records` across the guest buffers `iov`; the byte count. */
function scatter(p: Process, iov: GuestIovec, records: Uint8Array[]): number {
  const bytes = new Uint8Array(records.length * RECORD);
  records.forEach((r, i) => bytes.set(r, i * RECORD));
  let at = 0;
  for (const [addr, len] of iov) {
    if (at === bytes.length) break;
    const n = Math.min(Number(len), bytes.length - at);
    p.mem.slice(addr, n).set(bytes.subarray(at, at + n));
    at += n;
  }
  return bytes.length;
}

/** signalfd4's work: a new signalfd (`ufd` -1) or a new mask for one. */
function signalfd(p: Process, ufd: number, maskAddr: bigint, size: bigint, flags: number) {
  if (size !== 8n) throw new SyscallError(E.EINVAL);
  const mask = p.mem.u64(maskAddr) & ~UNWATCHABLE;
  if (flags & ~(SFD_NONBLOCK | SFD_CLOEXEC)) throw new SyscallError(E.EINVAL);
  const s = signalsOf(p);
  if (ufd !== -1) {
    const ops = p.fds.get(ufd).ops;
    if (!(ops instanceof SignalFd)) throw new SyscallError(E.EINVAL);
    ops.mask = mask;
    ops.sync(s);
    return ufd;
  }
  const host = hostSyscall(NR.eventfd2, 0, (flags & SFD_NONBLOCK) | SFD_CLOEXEC);
  if (host < 0n) return host;
  const fd = new SignalFd(Number(host), mask);
  const file = new OpenFile(fd.hostFd, { ops: fd, cleanup: () => watchers.get(s)?.delete(fd) });
  const n = p.fds.install(file, (flags & SFD_CLOEXEC) !== 0);
  watch(s, fd);
  return n;
}

const i32 = (v: bigint) => Number(BigInt.asIntN(32, v));

/** signalfd and signalfd4. */
export const signalfdModule: SyscallModule = {
  name: "signalfd",
  partial: {
    signalfd4: "a signalfd inherited across fork or execve reads the reader's signals, but " +
      "poll sees it readable for the creating process's",
    signalfd: "as signalfd4",
  },
  handlers: {
    signalfd: ({ args: [fd, mask, size], process: p }) => signalfd(p, i32(fd), mask, size, 0),
    signalfd4: ({ args: [fd, mask, size, flags], process: p }) =>
      signalfd(p, i32(fd), mask, size, i32(flags)),
  },
};
