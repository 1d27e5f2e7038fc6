/**
 * Scheduling: policies and real-time priorities (`sched_setscheduler`,
 * `sched_getscheduler`, `sched_setparam`, `sched_getparam`, the priority
 * range, `sched_rr_get_interval`), nice values (`getpriority`,
 * `setpriority`) and CPU affinity, per guest thread.
 *
 * Why emulated: a guest thread is a vCPU run by a host thread that also
 * serves other threads (the main thread) or is reused by the next thread
 * (a runner), so the host's own scheduler settings cannot stand for one
 * guest thread's. Each thread's settings are recorded here, starting as the
 * host process's, and every answer and error is Linux's, including its
 * permission rules: raising a priority needs CAP_SYS_NICE in the guest's
 * (recorded) capabilities or room under RLIMIT_NICE / RLIMIT_RTPRIO, so a
 * program that drops its capabilities gets what an unprivileged process
 * gets. The vCPUs' host threads are not re-prioritised or pinned.
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { bufferAddress, hostSyscall } from "./host.ts";
import type { Process, SyscallModule } from "./registry.ts";
import { capable } from "./process.ts";
import { rlimitsOf } from "./limits.ts";
import { threadsOf } from "./thread.ts";
import { processesOf } from "./procs.ts";

const NR = {
  getpgid: 121,
  getpriority: 140,
  sched_getparam: 143,
  sched_getscheduler: 145,
  sched_rr_get_interval: 148,
  sched_getaffinity: 204,
} as const;

/** Scheduling policies. */
const SCHED = { OTHER: 0, FIFO: 1, RR: 2, BATCH: 3, IDLE: 5, DEADLINE: 6 } as const;
const RESET_ON_FORK = 0x40000000;
/** sched_setparam's "keep the policy". */
const SETPARAM_POLICY = -1;
const MAX_RT_PRIO = 100;
const PRIO_PROCESS = 0, PRIO_PGRP = 1, PRIO_USER = 2;
const MIN_NICE = -20, MAX_NICE = 19;
const CAP_SYS_NICE = 23;
const RLIMIT_NICE = 13, RLIMIT_RTPRIO = 14;
/** Linux's RR_TIMESLICE: 100 ms. */
const RR_TIMESLICE_NS = 100_000_000n;
/** Above any kernel's cpumask_size() (NR_CPUS is at most 8192 bits). */
const AFFINITY_BUF = 8192;
const KEY = "sched";

const i32 = (v: bigint) => Number(BigInt.asIntN(32, v));

/** One thread's scheduling settings. */
interface Settings {
  policy: number;
  /** Real-time priority (0 for the fair policies). */
  priority: number;
  nice: number;
  resetOnFork: boolean;
  /** The CPUs it may run on, as sched_setaffinity left them (undefined: the host's). */
  affinity?: Uint8Array;
}

/** The host process's settings, what every guest thread starts with. */
function hostSettings(): Settings {
  const param = new Int32Array(1);
  const policy = Number(hostSyscall(NR.sched_getscheduler, 0));
  hostSyscall(NR.sched_getparam, 0, bufferAddress(new Uint8Array(param.buffer)));
  const prio = Number(hostSyscall(NR.getpriority, PRIO_PROCESS, 0)); // 20 - nice
  return {
    policy: policy < 0 ? SCHED.OTHER : policy & ~RESET_ON_FORK,
    priority: policy > 0 ? param[0] : 0,
    nice: prio > 0 ? 20 - prio : 0,
    resetOnFork: policy > 0 && (policy & RESET_ON_FORK) !== 0,
  };
}

/** The process's settings, by thread. */
function table(p: Process): Map<number, Settings> {
  let t = p.state.get(KEY) as Map<number, Settings> | undefined;
  if (!t) p.state.set(KEY, t = new Map());
  return t;
}

/**
 * Thread `tid`'s settings: the main thread starts with the host process's,
 * another with the main thread's as they are when it is first asked about
 * (Linux copies its creator's; threads are mostly made by the main one),
 * reset as sched_fork does under SCHED_RESET_ON_FORK.
 */
function settings(p: Process, tid: number): Settings {
  const t = table(p);
  let s = t.get(tid);
  if (!s) {
    const from = tid === p.pid ? hostSettings() : settings(p, p.pid);
    s = { ...from, affinity: from.affinity?.slice() };
    if (s.resetOnFork && tid !== p.pid) {
      if (rtPolicy(s.policy)) Object.assign(s, { policy: SCHED.OTHER, priority: 0, nice: 0 });
      else if (s.nice < 0) s.nice = 0;
      s.resetOnFork = false;
    }
    t.set(tid, s);
  }
  return s;
}

/** The thread `who` names (0: the caller): one of this process's, else ESRCH. */
function thread(p: Process, who: number): number {
  const threads = threadsOf(p);
  if (who === 0) return threads?.current ?? p.pid;
  if (who === p.pid || threads?.has(who)) return who;
  throw new SyscallError(E.ESRCH);
}

/** Linux's is_nice_reduction: `nice` is within RLIMIT_NICE (20 - nice ≤ the soft limit). */
function niceAllowed(p: Process, nice: number): boolean {
  return BigInt(20 - nice) <= rlimitsOf(p).values[RLIMIT_NICE * 2];
}

const rtPolicy = (policy: number) => policy === SCHED.FIFO || policy === SCHED.RR;
const validPolicy = (policy: number) =>
  policy === SCHED.OTHER || rtPolicy(policy) || policy === SCHED.BATCH ||
  policy === SCHED.IDLE || policy === SCHED.DEADLINE;

/** __sched_setscheduler's checks and change, for sched_setscheduler and sched_setparam. */
function setScheduler(p: Process, tid: number, policyArg: number, priority: number): number {
  const s = settings(p, tid);
  let policy: number, resetOnFork: boolean;
  if (policyArg < 0) {
    policy = s.policy;
    resetOnFork = s.resetOnFork;
  } else {
    resetOnFork = (policyArg & RESET_ON_FORK) !== 0;
    policy = policyArg & ~RESET_ON_FORK;
    if (!validPolicy(policy)) throw new SyscallError(E.EINVAL);
  }
  // sched_priority is unsigned in the kernel: a negative one is too large.
  if (priority < 0 || priority > MAX_RT_PRIO - 1) throw new SyscallError(E.EINVAL);
  // SCHED_DEADLINE needs sched_setattr's runtime and period: none here.
  if (policy === SCHED.DEADLINE || rtPolicy(policy) !== (priority !== 0)) {
    throw new SyscallError(E.EINVAL);
  }
  if (!capable(p, CAP_SYS_NICE)) {
    if (rtPolicy(policy)) {
      const rtprio = rlimitsOf(p).values[RLIMIT_RTPRIO * 2];
      if (policy !== s.policy && rtprio === 0n) throw new SyscallError(E.EPERM);
      if (priority > s.priority && BigInt(priority) > rtprio) throw new SyscallError(E.EPERM);
    }
    // SCHED_IDLE counts as nice 20: leaving it is a reduction RLIMIT_NICE must allow.
    if (s.policy === SCHED.IDLE && policy !== SCHED.IDLE && !niceAllowed(p, s.nice)) {
      throw new SyscallError(E.EPERM);
    }
    if (s.resetOnFork && !resetOnFork) throw new SyscallError(E.EPERM);
  }
  s.policy = policy;
  s.priority = priority;
  s.resetOnFork = resetOnFork;
  return 0;
}

/** Reads `struct sched_param` (EINVAL for NULL or a negative pid first, as Linux). */
function readParam(p: Process, pid: bigint, param: bigint): number {
  if (param === 0n || i32(pid) < 0) throw new SyscallError(E.EINVAL);
  return p.mem.view.getInt32(p.mem.check(param, 4), true);
}

/** Linux's set_one_prio: lowering nice needs RLIMIT_NICE room or CAP_SYS_NICE (EACCES). */
function setNice(p: Process, s: Settings, nice: number, error: number): number {
  if (nice < s.nice && !niceAllowed(p, nice) && !capable(p, CAP_SYS_NICE)) return E.EACCES;
  s.nice = nice;
  return error === E.ESRCH ? 0 : error;
}

/**
 * The settings getpriority/setpriority's (which, who) names: one thread,
 * or for this process's group or the guest's user every thread of the
 * process (other processes keep their own and are not reached from here).
 */
function prioTargets(p: Process, which: number, who: number): Settings[] {
  switch (which) {
    case PRIO_PROCESS:
      return [settings(p, thread(p, who))];
    case PRIO_PGRP:
    case PRIO_USER: {
      const own = which === PRIO_USER
        ? Deno.uid() ?? 0
        : processesOf(p)?.getpgid(0) ?? Number(hostSyscall(NR.getpgid, 0));
      if (who !== 0 && who !== own) throw new SyscallError(E.ESRCH);
      const threads = threadsOf(p);
      settings(p, thread(p, 0));
      return [...table(p)].filter(([tid]) => tid === p.pid || threads?.has(tid)).map(([, s]) => s);
    }
  }
  throw new SyscallError(E.EINVAL);
}

/** Writes a timespec of `ns` at guest `addr`. */
function putTimespec(p: Process, addr: bigint, ns: bigint): void {
  const o = p.mem.check(addr, 16);
  p.mem.view.setBigInt64(o, ns / 1_000_000_000n, true);
  p.mem.view.setBigInt64(o + 8, ns % 1_000_000_000n, true);
}

/** The host's affinity mask (all CPUs this process may use) and cpumask_size(), or -errno. */
function hostAffinity(len: number): { mask: Uint8Array; size: number } | bigint {
  const mask = new Uint8Array(AFFINITY_BUF);
  const n = hostSyscall(NR.sched_getaffinity, 0, len, bufferAddress(mask));
  return n < 0n ? n : { mask, size: Number(n) };
}

/** Scheduling policies, priorities, nice values and affinity of the guest's threads. */
export const schedModule: SyscallModule = {
  name: "sched",
  partial: {
    sched_setscheduler: "recorded per thread (the vCPU's host thread keeps its own), not " +
      "kept across fork or execve; threads of other processes ESRCH; SCHED_DEADLINE EINVAL",
    sched_setparam: "as sched_setscheduler",
    sched_getscheduler: "this process's threads; others ESRCH",
    sched_getparam: "this process's threads; others ESRCH",
    sched_rr_get_interval: "SCHED_OTHER/BATCH/IDLE: the host's slice for the serving thread",
    setpriority: "recorded per thread; PRIO_PGRP and PRIO_USER reach this process's threads " +
      "only; other processes ESRCH",
    getpriority: "as setpriority",
    sched_setaffinity: "recorded per thread (within the host's CPUs), not applied to the vCPU",
    sched_getaffinity: "what sched_setaffinity recorded, else the host's mask; other pids ESRCH",
  },
  handlers: {
    sched_get_priority_max({ args: [policy] }) {
      const n = i32(policy);
      if (rtPolicy(n)) return MAX_RT_PRIO - 1;
      if (validPolicy(n)) return 0;
      throw new SyscallError(E.EINVAL);
    },
    sched_get_priority_min({ args: [policy] }) {
      const n = i32(policy);
      if (rtPolicy(n)) return 1;
      if (validPolicy(n)) return 0;
      throw new SyscallError(E.EINVAL);
    },
    sched_getscheduler({ args: [pid], process: p }) {
      if (i32(pid) < 0) throw new SyscallError(E.EINVAL);
      const s = settings(p, thread(p, i32(pid)));
      return s.policy | (s.resetOnFork ? RESET_ON_FORK : 0);
    },
    sched_getparam({ args: [pid, param], process: p }) {
      if (param === 0n || i32(pid) < 0) throw new SyscallError(E.EINVAL);
      const s = settings(p, thread(p, i32(pid)));
      p.mem.view.setInt32(p.mem.check(param, 4), rtPolicy(s.policy) ? s.priority : 0, true);
      return 0;
    },
    sched_setscheduler({ args: [pid, policy, param], process: p }) {
      if (i32(policy) < 0) throw new SyscallError(E.EINVAL);
      const priority = readParam(p, pid, param);
      return setScheduler(p, thread(p, i32(pid)), i32(policy), priority);
    },
    sched_setparam({ args: [pid, param], process: p }) {
      const priority = readParam(p, pid, param);
      return setScheduler(p, thread(p, i32(pid)), SETPARAM_POLICY, priority);
    },
    sched_rr_get_interval({ args: [pid, interval], process: p }) {
      if (i32(pid) < 0) throw new SyscallError(E.EINVAL);
      const s = settings(p, thread(p, i32(pid)));
      let ns: bigint;
      if (s.policy === SCHED.RR) ns = RR_TIMESLICE_NS;
      else if (s.policy === SCHED.FIFO) ns = 0n;
      else {
        const ts = new BigInt64Array(2);
        const r = hostSyscall(
          NR.sched_rr_get_interval,
          0,
          bufferAddress(new Uint8Array(ts.buffer)),
        );
        if (r < 0n) return r;
        ns = ts[0] * 1_000_000_000n + ts[1];
      }
      putTimespec(p, interval, ns);
      return 0;
    },
    getpriority({ args: [which, who], process: p }) {
      let best = -1;
      for (const s of prioTargets(p, i32(which), i32(who))) best = Math.max(best, 20 - s.nice);
      return best;
    },
    setpriority({ args: [which, who, niceval], process: p }) {
      const w = i32(which);
      if (w < PRIO_PROCESS || w > PRIO_USER) throw new SyscallError(E.EINVAL);
      const nice = Math.min(MAX_NICE, Math.max(MIN_NICE, i32(niceval)));
      let error: number = E.ESRCH;
      for (const s of prioTargets(p, w, i32(who))) error = setNice(p, s, nice, error);
      if (error) throw new SyscallError(error);
      return 0;
    },
    sched_getaffinity({ args: [pid, len, mask], process: p }) {
      // The host checks the length (too small, not a multiple of 8) first and
      // tells cpumask_size(): never more than AFFINITY_BUF bytes are written.
      const host = hostAffinity(Number(BigInt.asUintN(32, len)));
      if (typeof host === "bigint") return host;
      const own = settings(p, thread(p, i32(pid))).affinity ?? host.mask;
      p.mem.slice(mask, host.size).set(own.subarray(0, host.size));
      return host.size;
    },
    sched_setaffinity({ args: [pid, len, mask], process: p }) {
      const host = hostAffinity(AFFINITY_BUF);
      if (typeof host === "bigint") return host;
      // Linux's get_user_cpu_mask: a short mask is zero-extended, a long one cut.
      const n = Math.min(Number(BigInt.asUintN(32, len)), host.size);
      const next = new Uint8Array(AFFINITY_BUF);
      next.set(p.mem.slice(mask, n));
      const tid = thread(p, i32(pid));
      let any = false;
      for (let i = 0; i < host.size; i++) {
        next[i] &= host.mask[i];
        if (next[i]) any = true;
      }
      if (!any) throw new SyscallError(E.EINVAL);
      settings(p, tid).affinity = next;
      return 0;
    },
  },
};

/**
 * What a new process (fork: `fork` true) or a new image (execve) takes
 * over: thread `fromTid` of `from` gives its settings to thread `toTid` of
 * `to`, as Linux's sched_fork (with SCHED_RESET_ON_FORK's reset) and exec.
 */
export function inheritSched(
  from: Process,
  fromTid: number,
  to: Process,
  toTid: number,
  fork: boolean,
): void {
  if (!table(from).has(fromTid) && !table(from).has(from.pid)) return; // never asked: the host's
  const s = settings(from, fromTid);
  const next: Settings = { ...s, affinity: s.affinity?.slice() };
  if (fork && next.resetOnFork) {
    if (rtPolicy(next.policy)) Object.assign(next, { policy: SCHED.OTHER, priority: 0, nice: 0 });
    else if (next.nice < 0) next.nice = 0;
    next.resetOnFork = false;
  }
  table(to).set(toTid, next);
}
