/**
 * Time, identity-adjacent information and limits, served on the host:
 * sleeps (`nanosleep`, `clock_nanosleep`), clock resolutions, CPU usage
 * (`times`, `getrusage`), `sysinfo`, `umask`, process group and
 * session, supplementary groups and the real/effective/saved ids. Errors
 * follow Linux's, in Linux's order (e.g. an invalid clock before a bad
 * pointer).
 *
 * The guest is one process on one vCPU: it is its own process group and
 * session leader, runs on CPU 0 of node 0, and sees no other processes
 * (their pids are `ESRCH`). Its ids are the host's and cannot change.
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { bufferAddress, hostSyscall } from "./host.ts";
import type { Process, SyscallModule } from "./registry.ts";
import { signalsOf } from "./signal.ts";
import { cpuClockRes } from "./cputime.ts";

/** Host syscall numbers this module uses. */
const NR = {
  times: 100,
  getrusage: 98,
  sysinfo: 99,
  getgroups: 115,
  clock_gettime: 228,
  clock_getres: 229,
  clock_nanosleep: 230,
} as const;

const CLOCK = {
  REALTIME: 0,
  MONOTONIC: 1,
  PROCESS_CPUTIME_ID: 2,
  THREAD_CPUTIME_ID: 3,
  MONOTONIC_RAW: 4,
  REALTIME_COARSE: 5,
  MONOTONIC_COARSE: 6,
  BOOTTIME: 7,
  REALTIME_ALARM: 8,
  BOOTTIME_ALARM: 9,
} as const;
const TIMER_ABSTIME = 1;
const NSEC = 1_000_000_000n;
/** The latest time a host timespec holds in ns (Linux saturates there too). */
const MAX_NS = (1n << 63n) - 1n;
const RUSAGE_SELF = 0, RUSAGE_CHILDREN = -1, RUSAGE_THREAD = 1;
const SIZEOF = { timespec: 16, tms: 32, rusage: 144, sysinfo: 112 } as const;
const NGROUPS_MAX = 65536;
const UMASK_KEY = "umask";

const i32 = (v: bigint) => Number(BigInt.asIntN(32, v));
const u32 = (v: bigint) => Number(BigInt.asUintN(32, v));

/** Reads a guest timespec; EFAULT if it is not user memory. */
function readTimespec(p: Process, addr: bigint): [bigint, bigint] {
  const o = p.mem.check(addr, SIZEOF.timespec);
  return [p.mem.view.getBigInt64(o, true), p.mem.view.getBigInt64(o + 8, true)];
}

/** Linux's timespec64_valid: a non-negative time with 0 <= tv_nsec < 1e9. */
function validTimespec([sec, nsec]: [bigint, bigint]): boolean {
  return sec >= 0n && nsec >= 0n && nsec < NSEC;
}

function hostNow(clock: number): bigint {
  const ts = new BigInt64Array(2);
  hostSyscall(NR.clock_gettime, clock, bufferAddress(new Uint8Array(ts.buffer)));
  return ts[0] * NSEC + ts[1];
}

/**
 * Sleeps until `deadline` (ns) on host clock `clock` (REALTIME or
 * MONOTONIC). Returns 0, or `-EINTR` when a signal interrupts it (a handler
 * is to run, or a default action ends the process) or the run's
 * `--timeout` is up (then later sleeps return at once too). `interrupted`
 * runs before an EINTR, also for a parked thread.
 */
function sleepUntil(
  p: Process,
  clock: number,
  deadline: bigint,
  interrupted?: () => void,
): number {
  const wake = () => (interrupted?.(), BigInt(-E.EINTR));
  const r = signalsOf(p).sleep(clock, deadline, undefined, { wake });
  if (r === "done" || r === "parked") return 0; // parked: not seen
  return Number(wake());
}

/** A monotonic deadline `req` from now. */
function monotonicDeadline([sec, nsec]: [bigint, bigint]): bigint {
  const d = sec * NSEC + nsec, now = hostNow(CLOCK.MONOTONIC);
  return d > MAX_NS - now ? MAX_NS : now + d;
}

/** A relative sleep; on EINTR the time left goes to `rem` (if not NULL). */
function sleepFor(p: Process, req: [bigint, bigint], rem: bigint): number {
  const deadline = monotonicDeadline(req);
  return sleepUntil(p, CLOCK.MONOTONIC, deadline, () => {
    if (rem === 0n) return;
    const left = deadline - hostNow(CLOCK.MONOTONIC);
    const l = left > 0n ? left : 0n;
    const o = p.mem.check(rem, SIZEOF.timespec);
    p.mem.view.setBigInt64(o, l / NSEC, true);
    p.mem.view.setBigInt64(o + 8, l % NSEC, true);
  });
}

/** Writes a u32 at a guest address; false if it is not user memory. */
function putU32(p: Process, addr: bigint, value: number): boolean {
  try {
    p.mem.view.setUint32(p.mem.check(addr, 4), value, true);
    return true;
  } catch (e) {
    if (e instanceof SyscallError) return false;
    throw e;
  }
}

/** getresuid/getresgid: three u32 out-params, written in order until one faults. */
function getres(p: Process, ptrs: readonly bigint[], id: number): number {
  for (const ptr of ptrs.slice(0, 3)) {
    if (!putU32(p, ptr, id)) throw new SyscallError(E.EFAULT);
  }
  return 0;
}

/** setuid/setgid: -1 is no id; only the current one is allowed. */
function setId(arg: bigint, current: number): number {
  const id = u32(arg);
  if (id === 0xffffffff) throw new SyscallError(E.EINVAL);
  if (id !== current) throw new SyscallError(E.EPERM);
  return 0;
}

/**
 * setresuid/setresgid/setreuid/setregid: each id -1 (unchanged) or the
 * current one; the guest has one set of ids, the host's.
 */
function setIds(args: readonly bigint[], current: number): number {
  for (const a of args) {
    const id = u32(a);
    if (id !== 0xffffffff && id !== current) throw new SyscallError(E.EPERM);
  }
  return 0;
}

const uid = () => Deno.uid() ?? 0;
const gid = () => Deno.gid() ?? 0;

/** Time, CPU usage, limits and identity-adjacent calls. */
export const timeModule: SyscallModule = {
  name: "time",
  partial: {
    clock_getres: "REALTIME(_COARSE), MONOTONIC(_RAW/_COARSE), BOOTTIME, " +
      "PROCESS/THREAD_CPUTIME and CPU clocks of this process's threads as the host reports " +
      "them; others (TAI, alarm) EINVAL, as in the guest kernel's clock_gettime; the vDSO " +
      "answers for the clocks the guest kernel keeps with the host's resolutions at boot",
    clock_nanosleep: "REALTIME, MONOTONIC and BOOTTIME; PROCESS_CPUTIME sleeps relative " +
      "times only (the vCPU never idles) and is EINVAL with TIMER_ABSTIME; TAI EINVAL; " +
      "interrupted by signals from ITIMER_REAL (alarm, setitimer), POSIX timers and --timeout",
    nanosleep:
      "interrupted by signals from ITIMER_REAL (alarm, setitimer), POSIX timers and --timeout",
    times: "the host process's CPU times",
    getrusage: "the host process's usage",
    sysinfo: "the host's",
    getcpu: "always CPU 0, node 0 (the vDSO's too)",
    setuid: "to the current uid only; others EPERM, even for root",
    setgid: "to the current gid only; others EPERM, even for root",
    setresuid: "each id -1 or the current uid; others EPERM, even for root",
    setresgid: "each id -1 or the current gid; others EPERM, even for root",
    setreuid: "each id -1 or the current uid; others EPERM, even for root",
    setregid: "each id -1 or the current gid; others EPERM, even for root",
  },
  handlers: {
    clock_getres({ args: [clock, res], process: p }) {
      const id = i32(clock);
      if (id < 0) return cpuClockRes(p, id, res);
      if (id < CLOCK.REALTIME || id > CLOCK.BOOTTIME) throw new SyscallError(E.EINVAL);
      const ts = new BigInt64Array(2);
      const r = hostSyscall(NR.clock_getres, id, bufferAddress(new Uint8Array(ts.buffer)));
      if (r < 0n) return r;
      if (res !== 0n) {
        const o = p.mem.check(res, SIZEOF.timespec);
        p.mem.view.setBigInt64(o, ts[0], true);
        p.mem.view.setBigInt64(o + 8, ts[1], true);
      }
      return 0;
    },
    nanosleep({ args: [req, rem], process: p }) {
      const t = readTimespec(p, req);
      if (!validTimespec(t)) throw new SyscallError(E.EINVAL);
      return sleepFor(p, t, rem);
    },
    clock_nanosleep({ args: [clock, flags, req, rem], process: p }) {
      const id = i32(clock);
      const abs = (i32(flags) & TIMER_ABSTIME) !== 0;
      // Linux's order: unknown clock (EINVAL), a clock that cannot sleep
      // (EOPNOTSUPP), the request (EFAULT, EINVAL), then the clock's own checks.
      const cpuClock = id < 0 && (id & 7) !== 3; // another process's or thread's CPU clock
      const alarm = id === CLOCK.REALTIME_ALARM || id === CLOCK.BOOTTIME_ALARM;
      const sleeps = id === CLOCK.REALTIME || id === CLOCK.MONOTONIC ||
        id === CLOCK.BOOTTIME || id === CLOCK.PROCESS_CPUTIME_ID;
      if (!sleeps && !cpuClock && !alarm) {
        const cannot = id === CLOCK.THREAD_CPUTIME_ID || id === CLOCK.MONOTONIC_RAW ||
          id === CLOCK.REALTIME_COARSE || id === CLOCK.MONOTONIC_COARSE || id < 0;
        throw new SyscallError(cannot ? E.EOPNOTSUPP : E.EINVAL);
      }
      const t = readTimespec(p, req);
      if (!validTimespec(t)) throw new SyscallError(E.EINVAL);
      // No RTC in the VM: alarm clocks cannot sleep (as on a host without one).
      if (alarm) throw new SyscallError(E.EOPNOTSUPP);
      if (cpuClock) throw new SyscallError(E.EINVAL);
      if (id === CLOCK.PROCESS_CPUTIME_ID && abs) throw new SyscallError(E.EINVAL);
      if (!abs) return sleepFor(p, t, rem);
      // Absolute: the guest's REALTIME is the host's; its MONOTONIC and
      // BOOTTIME both count from the host's monotonic clock.
      const host = id === CLOCK.REALTIME ? CLOCK.REALTIME : CLOCK.MONOTONIC;
      const at = t[0] * NSEC + t[1];
      return sleepUntil(p, host, at > MAX_NS ? MAX_NS : at);
    },
    times({ args: [buf], process: p }) {
      return hostSyscall(NR.times, buf === 0n ? 0n : p.mem.hostAddress(buf, SIZEOF.tms));
    },
    getrusage({ args: [who, ru], process: p }) {
      const w = i32(who);
      if (w !== RUSAGE_SELF && w !== RUSAGE_CHILDREN && w !== RUSAGE_THREAD) {
        throw new SyscallError(E.EINVAL);
      }
      return hostSyscall(NR.getrusage, w, p.mem.hostAddress(ru, SIZEOF.rusage));
    },
    sysinfo({ args: [info], process: p }) {
      return hostSyscall(NR.sysinfo, p.mem.hostAddress(info, SIZEOF.sysinfo));
    },
    sched_yield() {
      return 0;
    },
    getcpu({ args: [cpu, node], process: p }) {
      // Linux writes each non-NULL pointer it can, then reports any fault.
      let ok = true;
      if (cpu !== 0n) ok = putU32(p, cpu, 0) && ok;
      if (node !== 0n) ok = putU32(p, node, 0) && ok;
      if (!ok) throw new SyscallError(E.EFAULT);
      return 0;
    },
    umask({ args: [mask], process: p }) {
      const old = Number(p.state.get(UMASK_KEY) ?? 0o022);
      p.state.set(UMASK_KEY, Number(mask & 0o777n));
      return old;
    },
    getgroups({ args: [size, list], process: p }) {
      const n = i32(size);
      if (n < 0) throw new SyscallError(E.EINVAL);
      if (n === 0) return hostSyscall(NR.getgroups, 0, 0);
      const buf = new Uint8Array(Math.min(n, NGROUPS_MAX) * 4);
      const count = hostSyscall(NR.getgroups, Math.min(n, NGROUPS_MAX), bufferAddress(buf));
      // Nothing to copy, nothing to fault on (as Linux).
      if (count > 0n) p.mem.slice(list, Number(count) * 4).set(buf.subarray(0, Number(count) * 4));
      return count;
    },
    getresuid({ args, process: p }) {
      return getres(p, args, uid());
    },
    getresgid({ args, process: p }) {
      return getres(p, args, gid());
    },
    setuid({ args: [id] }) {
      return setId(id, uid());
    },
    setresuid: ({ args }) => setIds(args.slice(0, 3), uid()),
    setresgid: ({ args }) => setIds(args.slice(0, 3), gid()),
    setreuid: ({ args }) => setIds(args.slice(0, 2), uid()),
    setregid: ({ args }) => setIds(args.slice(0, 2), gid()),
    setgid({ args: [id] }) {
      return setId(id, gid());
    },
  },
};
