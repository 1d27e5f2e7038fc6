/**
 * Timers that raise signals: `alarm`, `setitimer`/`getitimer` (ITIMER_REAL
 * on the host timer of the signal state; ITIMER_VIRTUAL and ITIMER_PROF on
 * CPU time, cputime.ts) and POSIX timers (`timer_create` and the rest).
 * They expire in SignalState.fireTimers, which the run loops call.
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { type Process, type SyscallModule, UnsupportedError } from "./registry.ts";
import {
  clockNs,
  monotonicNs,
  type PosixTimer,
  signalsOf,
  type SignalState,
  SIGNO,
} from "./signal.ts";
import { isThread, validSignal } from "./sigcalls.ts";
import { cpuItimer } from "./cputime.ts";

const NSEC = 1_000_000_000n;
const MAX_NS = (1n << 63n) - 1n;
const ITIMER_REAL = 0, ITIMER_VIRTUAL = 1, ITIMER_PROF = 2;
const CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1, CLOCK_BOOTTIME = 7;
const CLOCK_PROCESS_CPUTIME_ID = 2, CLOCK_THREAD_CPUTIME_ID = 3, CLOCK_MONOTONIC_RAW = 4;
const CLOCK_REALTIME_COARSE = 5, CLOCK_MONOTONIC_COARSE = 6;
const CLOCK_REALTIME_ALARM = 8, CLOCK_BOOTTIME_ALARM = 9;
const SIGEV_SIGNAL = 0, SIGEV_NONE = 1, SIGEV_THREAD = 2, SIGEV_THREAD_ID = 4;
const TIMER_ABSTIME = 1;

const i32 = (v: bigint) => Number(BigInt.asIntN(32, v));

/** Remaining time of a timer due at `due` (0 = disarmed); a running timer shows at least 1 µs. */
function remaining(due: bigint, now: bigint): bigint {
  if (due === 0n) return 0n;
  return due > now ? due - now : 1000n;
}

/** POSIX timer `id` of the process; EINVAL if it has none by that id. */
function timerOf(s: SignalState, id: bigint): PosixTimer {
  const t = s.timers.get(i32(id));
  if (!t) throw new SyscallError(E.EINVAL);
  return t;
}

/** Writes timer `t`'s interval and time left as a struct itimerspec at `addr`. */
function writeItimerspec(p: Process, addr: bigint, t: PosixTimer, now: bigint): void {
  const o = p.mem.check(addr, 32), v = p.mem.view;
  // Due but not yet fired (a signal to come): 1 ns left, as Linux shows it.
  const left = t.due === 0n ? 0n : t.due > now ? t.due - now : 1n;
  v.setBigInt64(o, t.interval / NSEC, true);
  v.setBigInt64(o + 8, t.interval % NSEC, true);
  v.setBigInt64(o + 16, left / NSEC, true);
  v.setBigInt64(o + 24, left % NSEC, true);
}

function writeItimerval(p: Process, addr: bigint, interval: bigint, value: bigint): void {
  const o = p.mem.check(addr, 32);
  const v = p.mem.view;
  v.setBigInt64(o, interval / NSEC, true);
  v.setBigInt64(o + 8, interval % NSEC / 1000n, true);
  v.setBigInt64(o + 16, value / NSEC, true);
  v.setBigInt64(o + 24, value % NSEC / 1000n, true);
}

/** Sets ITIMER_REAL; returns the old [interval, remaining] in ns. */
function setReal(s: SignalState, value: bigint, interval: bigint): [bigint, bigint] {
  const now = monotonicNs();
  const old: [bigint, bigint] = [s.real.interval, remaining(s.real.due, now)];
  s.real = value > 0n ? { due: now + value, interval } : { due: 0n, interval: 0n };
  s.armHost(now);
  return old;
}

/** alarm, the interval timers and POSIX timers. */
export const timersModule: SyscallModule = {
  name: "timers",
  partial: {
    setitimer: "ITIMER_VIRTUAL and ITIMER_PROF both count the process's CPU time (user and " +
      "system alike)",
    getitimer: "as setitimer",
    timer_create: "REALTIME, MONOTONIC and BOOTTIME clocks; CPU-time clocks ENOSYS, alarm " +
      "clocks EOPNOTSUPP",
    timer_settime: "an absolute REALTIME expiry is converted to the monotonic clock when set: " +
      "a later change of the host's time does not move it",
  },
  handlers: {
    timer_create({ args: [clock, sevp, timerid], process: p }) {
      const c = i32(clock);
      if (c === CLOCK_PROCESS_CPUTIME_ID || c === CLOCK_THREAD_CPUTIME_ID || c < 0) {
        throw new UnsupportedError("timer_create on a CPU-time clock");
      }
      if (
        c === CLOCK_MONOTONIC_RAW || c === CLOCK_REALTIME_COARSE || c === CLOCK_MONOTONIC_COARSE
      ) {
        throw new SyscallError(E.EOPNOTSUPP);
      }
      // No RTC in the VM: no alarm timers (as on a host without one).
      if (c === CLOCK_REALTIME_ALARM || c === CLOCK_BOOTTIME_ALARM) {
        throw new SyscallError(E.EOPNOTSUPP);
      }
      if (c !== CLOCK_REALTIME && c !== CLOCK_MONOTONIC && c !== CLOCK_BOOTTIME) {
        throw new SyscallError(E.EINVAL);
      }
      const s = signalsOf(p);
      const t: PosixTimer = {
        clock: c,
        notify: SIGEV_SIGNAL,
        signo: SIGNO.SIGALRM,
        tid: 0,
        value: 0n,
        due: 0n,
        interval: 0n,
        delivered: 0,
      };
      if (sevp !== 0n) {
        const o = p.mem.check(sevp, 64), v = p.mem.view;
        t.value = v.getBigUint64(o, true);
        t.signo = v.getInt32(o + 8, true);
        t.notify = v.getInt32(o + 12, true);
        t.tid = v.getInt32(o + 16, true);
        // Linux's good_sigevent.
        if (t.notify === SIGEV_THREAD_ID && !isThread(p, t.tid)) throw new SyscallError(E.EINVAL);
        const signals = t.notify === SIGEV_SIGNAL || t.notify === SIGEV_THREAD ||
          t.notify === SIGEV_THREAD_ID;
        if (!signals && t.notify !== SIGEV_NONE) throw new SyscallError(E.EINVAL);
        if (signals && !validSignal(t.signo)) throw new SyscallError(E.EINVAL);
      }
      const at = p.mem.check(timerid, 4);
      const id = s.addTimer(t);
      if (sevp === 0n) t.value = BigInt(id);
      p.mem.view.setInt32(at, id, true);
      return 0;
    },
    timer_settime({ args: [timerid, flags, value, ovalue], process: p }) {
      if (value === 0n) throw new SyscallError(E.EINVAL);
      const o = p.mem.check(value, 32), v = p.mem.view;
      const [isec, insec, vsec, vnsec] = [0, 8, 16, 24].map((k) => v.getBigInt64(o + k, true));
      const valid = (sec: bigint, nsec: bigint) => sec >= 0n && nsec >= 0n && nsec < NSEC;
      if (!valid(isec, insec) || !valid(vsec, vnsec)) throw new SyscallError(E.EINVAL);
      const s = signalsOf(p), t = timerOf(s, timerid), now = monotonicNs();
      if (ovalue !== 0n) writeItimerspec(p, ovalue, t, now);
      const ns = (sec: bigint, nsec: bigint) =>
        sec > MAX_NS / NSEC - 1n ? MAX_NS : sec * NSEC + nsec;
      const at = ns(vsec, vnsec);
      t.delivered = 0;
      t.sent = undefined;
      if (at === 0n) {
        t.due = 0n;
        t.interval = 0n;
      } else {
        t.interval = ns(isec, insec);
        let rel = at;
        if (i32(flags) & TIMER_ABSTIME) {
          // The guest's MONOTONIC and BOOTTIME are the host's monotonic clock.
          rel = at - (t.clock === CLOCK_REALTIME ? clockNs(CLOCK_REALTIME) : now);
          if (rel < 0n) rel = 0n;
        }
        t.due = rel > MAX_NS - now ? MAX_NS : now + rel;
      }
      s.fireTimers(now); // one already due fires now
      s.armHost(now);
      return 0;
    },
    timer_gettime({ args: [timerid, value], process: p }) {
      const s = signalsOf(p);
      writeItimerspec(p, value, timerOf(s, timerid), monotonicNs());
      return 0;
    },
    timer_getoverrun({ args: [timerid], process: p }) {
      const s = signalsOf(p);
      return s.overrun(timerOf(s, timerid));
    },
    timer_delete({ args: [timerid], process: p }) {
      const s = signalsOf(p);
      timerOf(s, timerid);
      s.timers.delete(i32(timerid));
      s.armHost();
      return 0;
    },
    alarm({ args: [seconds], process: p }) {
      const secs = BigInt.asUintN(32, seconds);
      const [, left] = setReal(signalsOf(p), secs * NSEC, 0n);
      const us = left / 1000n;
      let r = us / 1_000_000n;
      if ((r === 0n && us % 1_000_000n) || us % 1_000_000n >= 500_000n) r++;
      return r;
    },
    setitimer({ args: [which, value, ovalue], process: p }) {
      const w = i32(which);
      if (w !== ITIMER_REAL && w !== ITIMER_VIRTUAL && w !== ITIMER_PROF) {
        throw new SyscallError(E.EINVAL);
      }
      let t = new BigInt64Array(4);
      if (value !== 0n) {
        const o = p.mem.check(value, 32);
        t = new BigInt64Array(p.mem.bytes.slice(o, o + 32).buffer);
        if (t[1] < 0n || t[1] >= 1_000_000n || t[3] < 0n || t[3] >= 1_000_000n) {
          throw new SyscallError(E.EINVAL);
        }
      }
      const ns = (sec: bigint, us: bigint) => sec * NSEC + us * 1000n;
      const [value_, interval_] = [ns(t[2], t[3]), ns(t[0], t[1])];
      const [interval, left] = w === ITIMER_REAL
        ? setReal(signalsOf(p), value_, interval_)
        : cpuItimer(p, w).set(value_, interval_); // on CPU time (cputime.ts)
      if (ovalue !== 0n) writeItimerval(p, ovalue, interval, left);
      return 0;
    },
    getitimer({ args: [which, value], process: p }) {
      const w = i32(which);
      if (w !== ITIMER_REAL && w !== ITIMER_VIRTUAL && w !== ITIMER_PROF) {
        throw new SyscallError(E.EINVAL);
      }
      const s = signalsOf(p);
      const [interval, left] = w === ITIMER_REAL
        ? [s.real.interval, remaining(s.real.due, monotonicNs())]
        : cpuItimer(p, w).get();
      writeItimerval(p, value, interval, left);
      return 0;
    },
  },
};
