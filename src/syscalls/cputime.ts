/**
 * CPU-time clocks: `clock_gettime` of CLOCK_PROCESS_CPUTIME_ID,
 * CLOCK_THREAD_CPUTIME_ID and the clock ids `clock_getcpuclockid` and
 * `pthread_getcpuclockid` make, which the guest kernel passes to the host
 * (it serves the other clocks from rdtsc itself), and their resolution.
 *
 * Why on the host: a guest thread's CPU time is the CPU time of the host
 * thread that runs its vCPU (a runner, or the main thread), which only the
 * host can read; a thread that sleeps or waits is parked and uses none.
 * The VM counts it per guest thread ({@linkcode ThreadHost.cpuTime}), so a
 * runner reused by a new thread starts it at 0, and the process's clock
 * adds the threads that have ended. Host calls served for a thread count
 * as its time, as a syscall's kernel time does on Linux.
 *
 * ITIMER_VIRTUAL and ITIMER_PROF (setitimer, getitimer) run on the same
 * clock: the signal state fires them when it looks at its timers, and
 * wakes to look when the process could have used the time left at the
 * soonest (all its threads busy).
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { bufferAddress, hostSyscall } from "./host.ts";
import type { Process, SyscallModule } from "./registry.ts";
import { processesOf } from "./procs.ts";
import { threadsOf } from "./thread.ts";
import { SI, signalsOf } from "./signal.ts";

const NR = { clock_gettime: 228, clock_getres: 229 } as const;
const CLOCK_PROCESS_CPUTIME_ID = 2, CLOCK_THREAD_CPUTIME_ID = 3;
const CPUCLOCK_SCHED = 2, CPUCLOCK_PERTHREAD = 4, CPUCLOCK_MASK = 3;
const NSEC = 1_000_000_000n;

const i32 = (v: bigint) => Number(BigInt.asIntN(32, v));

/** What a CPU clock id names: a thread's clock or the process's. */
type CpuClock = { thread: number } | { process: number };

/**
 * Decodes CPU clock id `id` (Linux's CPUCLOCK_PID/PERTHREAD/WHICH), or
 * undefined when it is none or names no thread of this process and no
 * process Linux would let it read (validate_clock_permissions).
 */
export function cpuClock(p: Process, id: number): CpuClock | undefined {
  const self = threadsOf(p)?.current ?? p.pid;
  if (id === CLOCK_PROCESS_CPUTIME_ID) return { process: p.pid };
  if (id === CLOCK_THREAD_CPUTIME_ID) return { thread: self };
  if (id >= 0 || (id & CPUCLOCK_MASK) === CPUCLOCK_MASK) return undefined;
  const pid = ~(id >> 3);
  if (id & CPUCLOCK_PERTHREAD) {
    if (pid === 0) return { thread: self };
    return pid === p.pid || threadsOf(p)?.has(pid) ? { thread: pid } : undefined;
  }
  if (pid === 0 || pid === p.pid) return { process: p.pid };
  try {
    processesOf(p)?.kill(pid, 0);
  } catch {
    return undefined;
  }
  return processesOf(p) ? { process: pid } : undefined;
}

/** The CPU time (ns) clock `c` reads now; EINVAL where it cannot be read. */
function cpuNs(p: Process, c: CpuClock): bigint {
  const t = threadsOf(p);
  if ("process" in c && c.process !== p.pid) {
    // Another guest process's threads are not reachable from here.
    throw new SyscallError(E.EINVAL);
  }
  if (!t?.cpuTime) {
    // No VM threads (a registry used alone): the host process's own clock.
    return hostClock("thread" in c ? CLOCK_THREAD_CPUTIME_ID : CLOCK_PROCESS_CPUTIME_ID);
  }
  const ns = "thread" in c ? t.cpuTime(c.thread) : t.cpuTime();
  if (ns === undefined) throw new SyscallError(E.EINVAL);
  return ns;
}

function hostClock(id: number): bigint {
  const ts = new BigInt64Array(2);
  const r = hostSyscall(NR.clock_gettime, id, bufferAddress(new Uint8Array(ts.buffer)));
  if (r < 0n) throw new SyscallError(Number(-r));
  return ts[0] * NSEC + ts[1];
}

function putTimespec(p: Process, addr: bigint, ns: bigint): void {
  const o = p.mem.check(addr, 16);
  p.mem.view.setBigInt64(o, ns / NSEC, true);
  p.mem.view.setBigInt64(o + 8, ns % NSEC, true);
}

/**
 * clock_getres of a CPU clock (the caller handles the others): 1 ns for
 * the scheduler's clock, a tick for CPUCLOCK_PROF and CPUCLOCK_VIRT (the
 * host's tick, from its clock of the same kind).
 */
export function cpuClockRes(p: Process, id: number, res: bigint): number {
  if (!cpuClock(p, id)) throw new SyscallError(E.EINVAL);
  let ns = 1n;
  if (id < 0 && (id & CPUCLOCK_MASK) !== CPUCLOCK_SCHED) {
    const ts = new BigInt64Array(2);
    // The same kind of clock of the host process itself (pid 0).
    const own = (id & 7) - 8;
    const r = hostSyscall(NR.clock_getres, own, bufferAddress(new Uint8Array(ts.buffer)));
    if (r < 0n) throw new SyscallError(Number(-r));
    ns = ts[0] * NSEC + ts[1];
  }
  if (res) putTimespec(p, res, ns);
  return 0;
}

/** The CPU-time clocks the guest kernel passes on. */
export const cputimeModule: SyscallModule = {
  name: "cputime",
  partial: {
    clock_gettime: "CPU-time clocks of this process and its threads (CPUCLOCK_PROF and " +
      "CPUCLOCK_VIRT read as CPUCLOCK_SCHED); other processes' EINVAL",
  },
  handlers: {
    clock_gettime({ args: [clock, tp], process: p }) {
      const c = cpuClock(p, i32(clock));
      if (!c) throw new SyscallError(E.EINVAL);
      putTimespec(p, tp, cpuNs(p, c));
      return 0;
    },
  },
};

const SIGVTALRM = 26, SIGPROF = 27;
let tickNs: bigint | undefined;

/** The host's TICK_NSEC: the resolution of its tick-based CPU clocks (CPUCLOCK_PROF). */
function tick(): bigint {
  if (tickNs === undefined) {
    const ts = new BigInt64Array(2);
    const r = hostSyscall(NR.clock_getres, -8, bufferAddress(new Uint8Array(ts.buffer)));
    tickNs = r < 0n ? 4_000_000n : ts[0] * NSEC + ts[1];
  }
  return tickNs;
}
/** The soonest a CPU timer is looked at again (it cannot be told when CPU time passes). */
const MIN_LOOK_NS = 1_000_000n;

/** ITIMER_VIRTUAL (1) and ITIMER_PROF (2) of one process, on its CPU clock. */
class CpuTimers {
  /** By `which - 1`: the CPU time it is due at (0: disarmed) and its interval. */
  readonly #timers = [{ due: 0n, interval: 0n }, { due: 0n, interval: 0n }];

  constructor(readonly p: Process) {}

  #now(): bigint {
    return threadsOf(this.p)?.cpuTime?.() ?? hostClock(CLOCK_PROCESS_CPUTIME_ID);
  }

  /** The timer's interval and time left (a due timer shows 1 µs, as a running one). */
  get(which: number): [bigint, bigint] {
    const t = this.#timers[which - 1];
    if (t.due === 0n) return [t.interval, 0n];
    const left = t.due - this.#now();
    return [t.interval, left > 0n ? left : 1000n];
  }

  /**
   * Arms (`value` > 0) or disarms the timer; its old interval and time
   * left. Linux adds a tick to the value (set_cpu_itimer); so do we.
   */
  set(which: number, value: bigint, interval: bigint): [bigint, bigint] {
    const old = this.get(which);
    this.#timers[which - 1] = value > 0n
      ? { due: this.#now() + value + tick(), interval }
      : { due: 0n, interval: 0n };
    this.#plan = undefined;
    signalsOf(this.p).armHost(undefined, true);
    return old;
  }

  /** Raises SIGVTALRM or SIGPROF for each timer whose CPU time has come. */
  fire(): void {
    if (!this.#timers.some((t) => t.due !== 0n)) return;
    const now = this.#now(), s = signalsOf(this.p);
    this.#timers.forEach((t, i) => {
      if (t.due === 0n || now < t.due) return;
      s.raise({ signo: i === 0 ? SIGVTALRM : SIGPROF, code: SI.KERNEL, pid: 0, uid: 0 });
      if (t.interval > 0n) t.due += t.interval * ((now - t.due) / t.interval + 1n);
      else t.due = 0n;
      this.#plan = undefined;
    });
  }

  /**
   * When (host monotonic ns) to look again: the soonest the process could
   * have used the time left. Kept until it passes or the timers change, so
   * that the host timer, re-armed after every call served, is not put off
   * again and again while the time runs out. Timers already due fire here
   * (their signal is delivered after the next call, or by the host timer).
   */
  wakeAt(mono: bigint): bigint | undefined {
    // The host timer may go off while no guest code runs (a call being
    // served, when this is asked again and again): fire what is due now.
    this.fire();
    if (this.#plan !== undefined && mono < this.#plan) return this.#plan;
    const armed = this.#timers.filter((t) => t.due !== 0n);
    if (!armed.length) return this.#plan = undefined;
    const now = this.#now(), busy = BigInt(Math.max(1, threadsOf(this.p)?.count ?? 1));
    let at: bigint | undefined;
    for (const t of armed) {
      let wait = (t.due - now) / busy;
      if (wait < MIN_LOOK_NS) wait = MIN_LOOK_NS;
      if (at === undefined || mono + wait < at) at = mono + wait;
    }
    return this.#plan = at;
  }

  /** The host monotonic time wakeAt last planned to look at (undefined: plan again). */
  #plan?: bigint;
}

/** The process's ITIMER_VIRTUAL/ITIMER_PROF (made on first use), for setitimer and getitimer. */
export function cpuItimer(p: Process, which: number): {
  get(): [bigint, bigint];
  set(value: bigint, interval: bigint): [bigint, bigint];
} {
  const s = signalsOf(p);
  let timers = s.cpuTimers as CpuTimers | undefined;
  if (!(timers instanceof CpuTimers)) s.cpuTimers = timers = new CpuTimers(p);
  const t = timers;
  return {
    get: () => t.get(which),
    set: (value, interval) => t.set(which, value, interval),
  };
}
