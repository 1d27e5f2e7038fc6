/**
 * Waiting on fds and the fd kinds made for waiting: poll, ppoll, select,
 * pselect6, epoll, eventfd, timerfd. Guest fds are translated to host fds
 * and the host kernel does the work. A wait that would block runs in
 * slices on the main thread, between which timers fire, signals are
 * checked and other threads are served, so a handler can interrupt it
 * (EINTR) and `--timeout` can end the run; any other thread parks.
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { OpenFile } from "./fdtable.ts";
import { hostSyscall } from "./host.ts";
import type { Process, SyscallModule } from "./registry.ts";
import { monotonicNs, ppoll, signalsOf } from "./signal.ts";
import { type ThreadHost, threadsOf } from "./thread.ts";

const NR = {
  epoll_create1: 291,
  epoll_ctl: 233,
  epoll_pwait: 281,
  eventfd2: 290,
  timerfd_create: 283,
  timerfd_settime: 286,
  timerfd_gettime: 287,
  fcntl: 72,
} as const; // deno-fmt-ignore
const SLICE_NS = 50_000_000n, NSEC = 1_000_000_000n;
/** The main thread's slice while other threads may need it. */
const THREAD_SLICE_NS = 10_000_000n;
/** How often a parked wait is looked at again. */
const RECHECK_NS = 2_000_000n;
const O_CLOEXEC = 0o2000000;
const FD_SETSIZE = 1024;

const i32 = (v: bigint) => Number(BigInt.asIntN(32, v));

/**
 * Waits until something is ready, `deadline` (monotonic ns, or undefined
 * for never) passes, or a signal or the run's end interrupts (EINTR), and
 * returns `finish` of the ready count (0 at the deadline), which copies the
 * result out to the guest. `attempt(ns)` is one host wait of at most that
 * long. On the main thread the waits are slices, between which timers fire,
 * signals are looked at and the other threads are served; on any other it
 * parks (see parkedWait).
 */
function waitLoop(
  p: Process,
  deadline: bigint | undefined,
  attempt: (ns: bigint) => bigint,
  finish: (r: bigint) => bigint,
  watch: Uint8Array,
  onEnd?: () => void,
) {
  const t = threadsOf(p);
  if (t && !t.onMain) return parkedWait(p, t, deadline, attempt, finish, watch, onEnd);
  if (onEnd) {
    const inner = finish;
    finish = (r) => (onEnd(), inner(r));
  }
  const sig = signalsOf(p);
  for (let first = true;; first = false) {
    const now = monotonicNs();
    sig.fireTimers(now);
    if (sig.timedOut || sig.next()) {
      onEnd?.();
      throw new SyscallError(E.EINTR);
    }
    if (!first) sig.idle?.(now);
    // With other threads, short slices: they wait for this one to serve them.
    const slice = t && t.count > 1 ? THREAD_SLICE_NS : SLICE_NS;
    const left = deadline === undefined ? slice : deadline - now;
    const r = attempt(left <= 0n ? 0n : left < slice ? left : slice);
    if (r !== 0n && r !== BigInt(-E.EINTR)) return finish(r);
    if (deadline !== undefined && monotonicNs() >= deadline) return finish(0n);
  }
}

/**
 * A thread other than the main one must not hold up the host thread that
 * serves the others (an epoll_wait with no timeout in one thread of node
 * stopped every other one): it looks once, then parks, and the main thread
 * looks again for it every RECHECK_NS, or at once when it finds one of the
 * `watch` pollfds ready while it waits itself, until something is ready or
 * the deadline passes, then resumes it with the result. A signal ends the
 * wait with EINTR, as Linux does for these calls whatever SA_RESTART says.
 * `onEnd` runs however it ends (select's time left).
 */
function parkedWait(
  p: Process,
  t: ThreadHost,
  deadline: bigint | undefined,
  attempt: (ns: bigint) => bigint,
  finish: (r: bigint) => bigint,
  watch: Uint8Array,
  onEnd?: () => void,
): bigint {
  if (onEnd) {
    const inner = finish;
    finish = (r) => (onEnd(), inner(r));
  }
  const sig = signalsOf(p);
  if (sig.timedOut || sig.next()) {
    onEnd?.();
    throw new SyscallError(E.EINTR);
  }
  const ready = (r: bigint) => r !== 0n && r !== BigInt(-E.EINTR);
  const r = attempt(0n);
  if (ready(r)) return finish(r);
  if (deadline !== undefined && monotonicNs() >= deadline) return finish(0n);
  const tid = t.current;
  const done = (r: bigint) => {
    let ret: bigint;
    try {
      ret = finish(r);
    } catch (e) {
      if (!(e instanceof SyscallError)) throw e;
      ret = BigInt(-e.errno);
    }
    t.resume(tid, ret);
  };
  const next = (now: bigint) =>
    deadline !== undefined && deadline < now + RECHECK_NS ? deadline : now + RECHECK_NS;
  const check = () => {
    const r = attempt(0n);
    if (ready(r)) return done(r);
    const now = monotonicNs();
    if (deadline !== undefined && now >= deadline) return done(0n);
    t.park(next(now), check, interrupt, watch);
  };
  const interrupt = () => (onEnd?.(), t.resume(tid, BigInt(-E.EINTR)));
  t.park(next(monotonicNs()), check, interrupt, watch);
  return 0n; // parked: the call returns what resume gives it
}

/** A wait's deadline (monotonic ns; undefined: none) and what ends it (the time left). */
interface Timeout {
  deadline?: bigint;
  onEnd?: () => void;
}

/**
 * A guest timeout for select (a timeval: `usec`), pselect6 and ppoll (a
 * timespec), or NULL (no deadline), as an absolute monotonic deadline;
 * `onEnd` writes back the time left however the call ends, as Linux's
 * poll_select_finish does (0 after a full timeout; nothing for a zero
 * timeout; a fault then is ignored).
 */
function guestTimeout(p: Process, addr: bigint, usec: boolean): Timeout {
  if (!addr) return {};
  const sec = BigInt.asIntN(64, p.mem.u64(addr)), frac = BigInt.asIntN(64, p.mem.u64(addr + 8n));
  if (sec < 0n || frac < 0n || (!usec && frac >= NSEC)) throw new SyscallError(E.EINVAL);
  const ns = sec * NSEC + (usec ? frac * 1000n : frac);
  const deadline = monotonicNs() + ns;
  if (ns === 0n) return { deadline };
  const onEnd = () => {
    const now = monotonicNs(), left = deadline > now ? deadline - now : 0n;
    try {
      const o = p.mem.check(addr, 16);
      p.mem.view.setBigInt64(o, left / NSEC, true);
      p.mem.view.setBigInt64(o + 8, usec ? left % NSEC / 1000n : left % NSEC, true);
    } catch (e) {
      if (!(e instanceof SyscallError)) throw e;
    }
  };
  return { deadline, onEnd };
}

/** poll on guest pollfds: host fds swapped in, revents copied back. */
function pollFds(p: Process, fds: bigint, nfds: bigint, { deadline, onEnd }: Timeout) {
  const n = Number(nfds);
  if (n < 0 || n > FD_SETSIZE * 64) throw new SyscallError(E.EINVAL);
  const guest = p.mem.slice(fds, n * 8);
  const gv = new DataView(guest.buffer, guest.byteOffset, guest.byteLength);
  const host = new Uint8Array(n * 8);
  const hv = new DataView(host.buffer);
  for (let i = 0; i < n; i++) {
    const fd = gv.getInt32(i * 8, true);
    let hostFd = -1;
    if (fd >= 0) {
      try {
        hostFd = p.fds.get(fd).hostFd;
      } catch {
        hostFd = -2; // not open: POLLNVAL below
      }
    }
    hv.setInt32(i * 8, hostFd === -2 ? -1 : hostFd, true);
    hv.setInt16(i * 8 + 4, gv.getInt16(i * 8 + 4, true), true);
    if (hostFd === -2) hv.setInt16(i * 8 + 6, 0x20, true); // POLLNVAL
  }
  const nval = [...Array(n).keys()].filter((i) => hv.getInt16(i * 8 + 6, true) === 0x20);
  const finish = (r: bigint) => {
    for (let i = 0; i < n; i++) {
      gv.setInt16(
        i * 8 + 6,
        nval.includes(i) ? 0x20 : r > 0n ? hv.getInt16(i * 8 + 6, true) : 0,
        true,
      );
    }
    return r;
  };
  if (nval.length) return onEnd?.(), finish(BigInt(nval.length));
  return waitLoop(p, deadline, (ns) => ppoll(host, ns), finish, host, onEnd);
}

/**
 * select on guest fd_sets, through poll. Fds past the fd table's size are
 * ignored (the sets cut there), as Linux does; an fd below it that is not
 * open is EBADF.
 */
function selectFds(
  p: Process,
  [nfds, readfds, writefds, exceptfds]: bigint[],
  { deadline, onEnd }: Timeout,
) {
  let n = i32(nfds);
  if (n < 0) throw new SyscallError(E.EINVAL);
  if (n > p.fds.capacity) n = p.fds.capacity;
  const bytes = Math.ceil(n / 64) * 8;
  const sets = [readfds, writefds, exceptfds].map((a) => a ? p.mem.slice(a, bytes) : undefined);
  const events = [0x1 | 0x8 | 0x10, 0x4 | 0x8, 0x2]; // in (+err/hup), out (+err), pri
  const list: { fd: number; host: number; ev: number }[] = [];
  for (let fd = 0; fd < n; fd++) {
    let ev = 0;
    sets.forEach((s, k) => {
      if (s && s[fd >> 3] & (1 << (fd & 7))) ev |= [0x1, 0x4, 0x2][k];
    });
    if (!ev) continue;
    let hostFd: number;
    try {
      hostFd = p.fds.get(fd).hostFd;
    } catch (e) {
      onEnd?.();
      throw e; // EBADF, as select
    }
    list.push({ fd, host: hostFd, ev });
  }
  const host = new Uint8Array(list.length * 8);
  const hv = new DataView(host.buffer);
  list.forEach((e, i) => {
    hv.setInt32(i * 8, e.host, true);
    hv.setInt16(i * 8 + 4, e.ev, true);
  });
  const finish = (r: bigint) => {
    if (r < 0n) return r;
    for (const s of sets) s?.fill(0);
    let count = 0;
    list.forEach((e, i) => {
      const re = hv.getInt16(i * 8 + 6, true);
      sets.forEach((s, k) => {
        if (s && re & events[k] && e.ev & [0x1, 0x4, 0x2][k]) {
          s[e.fd >> 3] |= 1 << (e.fd & 7);
          count++;
        }
      });
    });
    return BigInt(count);
  };
  return waitLoop(p, deadline, (ns) => ppoll(host, ns), finish, host, onEnd);
}

/** Installs a host fd the kernel just made (eventfd, timerfd, epoll). */
function install(p: Process, hostFd: bigint, flags: number) {
  if (hostFd < 0n) return hostFd;
  return p.fds.install(new OpenFile(Number(hostFd)), (flags & O_CLOEXEC) !== 0);
}

/** Waiting on fds; eventfd, timerfd and epoll. */
export const pollModule: SyscallModule = {
  name: "poll",
  partial: {
    epoll_ctl: "events carry the guest's data; an epoll fd inside an epoll set is not translated",
  },
  handlers: {
    poll({ args: [fds, nfds, timeout], process: p }) {
      const ms = i32(timeout);
      return pollFds(p, fds, nfds, {
        deadline: ms < 0 ? undefined : monotonicNs() + BigInt(ms) * 1_000_000n,
      });
    },
    ppoll({ args: [fds, nfds, ts], process: p }) {
      return pollFds(p, fds, nfds, guestTimeout(p, ts, false));
    },
    select({ args, process: p }) {
      return selectFds(p, [...args], guestTimeout(p, args[4], true));
    },
    pselect6({ args, process: p }) {
      return selectFds(p, [...args], guestTimeout(p, args[4], false));
    },
    eventfd2: ({ args: [initval, flags], process: p }) =>
      install(p, hostSyscall(NR.eventfd2, initval, flags | BigInt(O_CLOEXEC)), Number(flags)),
    eventfd: ({ args: [initval], process: p }) =>
      install(p, hostSyscall(NR.eventfd2, initval, O_CLOEXEC), 0),
    timerfd_create: ({ args: [clock, flags], process: p }) =>
      install(p, hostSyscall(NR.timerfd_create, clock, flags | BigInt(O_CLOEXEC)), Number(flags)),
    timerfd_settime({ args: [fd, flags, value, old], process: p }) {
      return hostSyscall(
        NR.timerfd_settime,
        p.fds.get(fd).hostFd,
        flags,
        p.mem.hostAddress(value, 32),
        old ? p.mem.hostAddress(old, 32) : 0,
      );
    },
    timerfd_gettime: ({ args: [fd, value], process: p }) =>
      hostSyscall(NR.timerfd_gettime, p.fds.get(fd).hostFd, p.mem.hostAddress(value, 32)),
    epoll_create1: ({ args: [flags], process: p }) =>
      install(p, hostSyscall(NR.epoll_create1, flags | BigInt(O_CLOEXEC)), Number(flags)),
    epoll_create({ args: [size], process: p }) {
      if (i32(size) <= 0) throw new SyscallError(E.EINVAL);
      return install(p, hostSyscall(NR.epoll_create1, O_CLOEXEC), 0);
    },
    epoll_ctl({ args: [epfd, op, fd, event], process: p }) {
      const ep = p.fds.get(epfd).hostFd, target = p.fds.get(fd).hostFd;
      return hostSyscall(NR.epoll_ctl, ep, op, target, event ? p.mem.hostAddress(event, 12) : 0);
    },
    epoll_wait: ({ args: [epfd, events, max, timeout], process: p }) =>
      epollWait(p, epfd, events, max, i32(timeout)),
    epoll_pwait: ({ args: [epfd, events, max, timeout], process: p }) =>
      epollWait(p, epfd, events, max, i32(timeout)),
  },
};

function epollWait(p: Process, epfd: bigint, events: bigint, max: bigint, timeoutMs: number) {
  const n = i32(max);
  if (n <= 0) throw new SyscallError(E.EINVAL);
  const ep = p.fds.get(epfd).hostFd;
  const out = p.mem.hostAddress(events, n * 12);
  const deadline = timeoutMs < 0 ? undefined : monotonicNs() + BigInt(timeoutMs) * 1_000_000n;
  // Ready events make the epoll fd readable: what a parked wait watches.
  const watch = new Uint8Array(8), wv = new DataView(watch.buffer);
  wv.setInt32(0, ep, true);
  wv.setInt16(4, 1, true); // POLLIN
  return waitLoop(
    p,
    deadline,
    (ns) => hostSyscall(NR.epoll_pwait, ep, out, n, Number(ns / 1_000_000n), 0, 8),
    (r) => r,
    watch,
  );
}
