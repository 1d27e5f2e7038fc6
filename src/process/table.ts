/**
 * The process table: every guest process of one run, each its own KVM VM
 * ({@linkcode Guest}) in this one host process, with Linux's relations between
 * them (pid, parent, process group, session, exit status until reaped) and
 * the loop that serves them all.
 *
 * One process runs as before: its vCPU 0 on the calling (main) thread with
 * the doorbell transport, or exitless. The first fork makes the run one of
 * several processes for good: every vCPU of every process then runs on a
 * runner thread of its own, and the main thread serves all of their exits,
 * timers and parked waits ({@linkcode ProcessTable.run}), sleeping on one
 * eventfd that every runner writes and on the fds parked reads and polls
 * watch. `execve` replaces a process's VM by a new one in place (same pid).
 * @module
 */
import { Host } from "./host.ts";
import { addImage, newStats } from "./stats.ts";
import type { Sampler } from "../profile/sampler.ts";
import { readCapture, type Stdio } from "../vm/stdio.ts";
import type { Profile } from "../profile/profile.ts";
import { E, SyscallError } from "../syscalls/errno.ts";
import { hostSyscall } from "../syscalls/host.ts";
import { monotonicNs, SI, SIG_IGN, type SigInfo, SIGNO } from "../syscalls/signal.ts";
import type { CloneSpec, ThreadHost } from "../syscalls/thread.ts";
import {
  attachProcesses,
  type ProcessHost,
  type WaitMatch,
  type WaitOptions,
} from "../syscalls/procs.ts";
import { boottimeNs } from "../syscalls/procinfo.ts";
import { setComm } from "../syscalls/process.ts";
import { threadsOf } from "../syscalls/thread.ts";
import { closeEventfd, drainEventfd, makeEventfd } from "../vm/wake.ts";
import { type Cpu, waitWatched } from "../vm/threads.ts";
import type { ProcessStats, RunResult } from "../vm/options.ts";
import type { Guest } from "../vm/guest.ts";
import { forkGuest, holdForVfork, lockMm, releaseVfork } from "../vm/fork.ts";
import { execImage } from "../vm/setup.ts";
import { MachinePool } from "../vm/machine.ts";
import { RunPoller } from "./poll.ts";
import type { Grants } from "../syscalls/grants.ts";
import { limitGrants } from "../syscalls/limits.ts";
import { NetPolicy } from "../net/policy.ts";
import { POLL_MS, type SignalSource } from "../vm/hostsignals.ts";

const NR_GETPGID = 121, NR_GETSID = 124;
/** waitid's si_code values. */
const CLD = { EXITED: 1, KILLED: 2, DUMPED: 3, STOPPED: 5, CONTINUED: 6 } as const;
/** How long the loop sleeps at most when nothing is due (ms). */
const IDLE_MS = 50;

/** One guest process. */
export interface Proc {
  readonly pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** Its current image (execve replaces it). */
  vm: Guest;
  /** Its wait status once it has ended: a zombie until its parent reaps it. */
  status?: number;
  children: Set<Proc>;
  /** Parked wait4/waitid calls of its threads, looked at again when a child changes. */
  waiters: Set<() => boolean>;
  /** Told when it ends (its pidfds become readable). */
  endWatchers?: Set<() => void>;
  /** Whether it has called execve (setpgid on it from its parent is EACCES then). */
  execed?: boolean;
  /** A vfork child: its parent's thread `tid` waits until it calls execve or ends. */
  vforkOf?: { parent: Proc; tid: number };
  /** Its counters, over the images that have ended. */
  stats: ProcessStats;
  /** Stopped by a stop signal (job control): the table does not serve it until SIGCONT. */
  stopped?: boolean;
  /** A stop or a continuation its parent has not waited for yet (WSTOPPED, WCONTINUED). */
  report?: { continued: boolean; sig: number };
  /** When it started (host CLOCK_BOOTTIME ns), for /proc. */
  started: bigint;
}

/** Images whose timers wake the main thread for the current slice's end, and when it is. */
const yieldWatched = new WeakMap<Guest, { at: bigint }>();

/**
 * Arms the host timer of image `vm` for `yieldAt` (performance.now() ms),
 * so that a vCPU the main thread runs leaves KVM_RUN then.
 */
function armYield(vm: Guest, yieldAt: number): void {
  const at = monotonicNs() + BigInt(Math.max(0, Math.round((yieldAt - performance.now()) * 1e6)));
  let w = yieldWatched.get(vm);
  if (!w) {
    const watch = { at };
    yieldWatched.set(vm, w = watch);
    vm.sig.watches.add({ due: () => watch.at, fire: () => void (watch.at = NEVER_NS) });
  }
  w.at = at;
  vm.sig.armHost(undefined, true);
}

const NEVER_NS = 0x7fffffffffffffffn;

/** The guest processes of one run, and the loop that serves them. */
export class ProcessTable {
  readonly #procs = new Map<number, Proc>();
  #root!: Proc;
  #next: number;
  /** Whether the run has had more than one process (every vCPU then runs on a runner). */
  #multi = false;
  #wakeFd = -1;
  /** Exitless calls among several processes (poll.ts), from the first fork on. */
  #poller?: RunPoller;
  /** Processes that ran, the first included. */
  #started = 0;
  /** The counters of every process but the first, as each ended. */
  #ended: ProcessStats[] = [];
  /** The original first VM: its owner disposes it, the table every other. */
  #first?: Guest;
  /** At most this many processes alive or unreaped at once (fork is EAGAIN past it). */
  readonly maxProcesses: number;
  /** Machines of ended processes, for the next fork or execve (src/vm/machine.ts). */
  readonly machines: MachinePool = new MachinePool();
  /** The first process's standard streams (the piped ones are read when the run ends). */
  stdio?: Stdio;
  #begun = false;
  /** When the current slice ends (performance.now() ms; 0: run to the end). */
  #yieldAt = 0;
  /** State the run's processes share (ProcessHost.shared). */
  readonly shared = new Map<string, unknown>();
  /** The run's profile, when it is profiled (BootOptions.profile): every process samples into it. */
  profile?: Profile;
  /** Makes a process's sampler for that profile (the module is loaded only for a profiled run). */
  sampler?: (g: Guest) => Sampler;
  /** Signals from outside the run for its first process (BootOptions.signals). */
  signals?: SignalSource;

  /** What the run was granted (network, limits): every process's. */
  readonly grants: Grants;

  /**
   * @param rootPid the first process's pid: ids of later processes and threads follow it
   * @param grants what the run was granted (default: no network, default limits)
   */
  constructor(readonly rootPid: number, maxProcesses = 256, grants?: Grants) {
    this.#next = rootPid + 1;
    this.maxProcesses = maxProcesses;
    this.grants = grants ?? { net: NetPolicy.deny(), limits: limitGrants({}) };
  }

  /** Threads alive in the run, all processes together. */
  tasks(): number {
    let n = 0;
    for (const q of this.#procs.values()) {
      if (q.status === undefined) n += q.vm.threads?.count ?? 1;
    }
    return n;
  }

  /** Whether the run has several processes (vCPUs all on runners, served by {@linkcode run}). */
  get multi(): boolean {
    return this.#multi;
  }

  /** A new id for a process or a thread: one numbering, as Linux's pids and tids. */
  allocId(): number {
    while (this.#procs.has(this.#next)) this.#next++;
    return this.#next++;
  }

  /** The process `pid`, if it is in the table (alive or a zombie). */
  get(pid: number): Proc | undefined {
    return this.#procs.get(pid);
  }

  /** Enters the first process of the run. */
  addRoot(vm: Guest, ppid: number): Proc {
    const pid = this.rootPid;
    const pgid = Number(hostSyscall(NR_GETPGID, 0)), sid = Number(hostSyscall(NR_GETSID, 0));
    const stats = newStats(pid, ppid, vm);
    const root: Proc = {
      pid,
      ppid,
      pgid,
      sid,
      vm,
      children: new Set(),
      waiters: new Set(),
      stats,
      started: boottimeNs(),
    };
    this.#procs.set(pid, root);
    this.#root = root;
    this.#first = vm;
    this.#started = 1;
    return root;
  }

  /**
   * Runs the first process, and every process it starts, until the first
   * one ends; then the others are killed (as a container's init takes its
   * children with it). The first process's result, with the count of processes.
   */
  run(deadline?: bigint): RunResult {
    return this.runSlice(deadline, 0)!;
  }

  /**
   * {@linkcode run}, in slices: with `yieldAt` (performance.now() ms; 0:
   * never) the loops give way once it has passed (within ~50 ms) and this
   * returns undefined, everything left as it was: the runner threads go
   * on running their guests, whose calls wait to be served until the next
   * slice. So an async caller lets the event loop run between slices
   * (Vm.runAsync: an AbortSignal, output streams).
   */
  runSlice(deadline: bigint | undefined, yieldAt: number): RunResult | undefined {
    const root = this.#root;
    if (!this.#begun) {
      this.#begun = true;
      this.#watchSignals(root.vm);
      root.vm.begin(deadline);
      // Sliced, every vCPU goes on a runner from the start, as with several
      // processes: a call that blocks (a sleep, a read) then parks its
      // thread instead of holding the main one, which must give way.
      if (yieldAt) this.#goMulti();
    }
    this.#yieldAt = yieldAt;
    if (yieldAt) armYield(root.vm, yieldAt);
    let result: RunResult | undefined, paused = false;
    try {
      for (;;) {
        if (!this.#multi) {
          root.vm.runSolo();
          if (root.vm.replacement) {
            this.#swap(root, deadline);
            continue;
          }
          if (!this.#multi) {
            paused = !root.vm.ended && this.yieldDue();
            break;
          }
        }
        this.#serveAll(deadline);
        paused = root.status === undefined; // only a slice's end leaves it running
        break;
      }
      if (paused) return undefined;
      result = root.vm.finish();
      addImage(root.stats, result);
      root.vm.flushProfile();
    } finally {
      if (!paused) this.#end();
    }
    return this.#result(result!);
  }

  /** Whether a slice's time is up ({@linkcode runSlice}). */
  yieldDue(): boolean {
    return this.#yieldAt !== 0 && performance.now() >= this.#yieldAt;
  }

  /** Kills the first process (and so the run) as SIGKILL from outside (an AbortSignal). */
  abort(): void {
    this.#fromOutside(SIGNO.SIGKILL);
  }

  /** The run is over: every other process ends, every VM and machine is freed. */
  #end(): void {
    const root = this.#root;
    for (const p of this.#procs.values()) {
      if (p.vm === this.#first) continue;
      if (p !== root && p.status === undefined) {
        addImage(p.stats, p.vm.finish(true));
        this.#ended.push(p.stats);
      }
      p.vm.dispose();
    }
    this.machines.dispose();
    if (this.#wakeFd >= 0) closeEventfd(this.#wakeFd);
    this.#wakeFd = -1;
  }

  /** The first process's result, with what the run as a whole adds to it. */
  #result(result: RunResult): RunResult {
    const root = this.#root;
    result.processes = this.#started;
    const c = this.stdio?.captures;
    if (c?.stdout !== undefined) result.stdout = readCapture(c.stdout);
    if (c?.stderr !== undefined) result.stderr = readCapture(c.stderr);
    if (c) this.stdio!.captures = {};
    if (this.profile) result.profile = this.profile;
    result.perProcess = [root.stats, ...this.#ended.sort((a, b) => a.pid - b.pid)];
    return result;
  }

  /**
   * Looks at {@linkcode signals} every POLL_MS ms with the first process's
   * timers (image `vm` of it): each signal is raised in it as a kill from
   * outside the guest.
   */
  #watchSignals(vm: Guest): void {
    const source = this.signals;
    if (!source) return;
    const every = BigInt(POLL_MS) * 1_000_000n;
    const watch = { next: monotonicNs() + every };
    vm.sig.watches.add({
      due: () => watch.next,
      fire: (now) => {
        watch.next = now + every;
        for (const signo of source.take()) this.#fromOutside(signo);
      },
    });
    vm.sig.armHost(undefined, true);
  }

  /** A signal from outside the run for its first process, as kill(2) from outside the guest. */
  #fromOutside(signo: number): void {
    const root = this.#root;
    if (root.status !== undefined || root.vm.ended) return;
    if (signo === SIGNO.SIGCONT || signo === SIGNO.SIGKILL) {
      this.#continue(root, signo === SIGNO.SIGKILL);
    }
    root.vm.raise({ signo, code: SI.USER, pid: 0, uid: 0 });
  }

  /** Makes the run one of several processes: every vCPU on a runner, one wake eventfd. */
  #goMulti(): void {
    if (this.#multi) return;
    this.#multi = true;
    this.#poller = new RunPoller(this.#root.vm);
    const fd = makeEventfd();
    this.#wakeFd = fd;
  }

  /** The wake eventfd every runner writes at each exit once the run has several processes. */
  get wakeFd(): number {
    return this.#wakeFd;
  }

  /** Lets image `g` run among the others, its calls posted when the run polls. */
  #schedule(g: Guest): void {
    g.schedule(this.#wakeFd);
    this.#poller!.adopt(g);
  }

  /** The images of the processes alive; `served`: only those served now (not stopped). */
  *#live(served = false): Generator<Guest> {
    for (const p of this.#procs.values()) {
      if (p.status === undefined && !(served && p.stopped)) yield p.vm;
    }
  }

  /** The loop of a run with several processes: until the first one has ended. */
  #serveAll(deadline?: bigint): void {
    const root = this.#root, poller = this.#poller!;
    for (const g of this.#live()) this.#schedule(g);
    const watches: Cpu[] = [];
    while (root.status === undefined && !this.yieldDue()) {
      let work = 0;
      for (const p of [...this.#procs.values()]) {
        if (p.status !== undefined || p.stopped) continue; // a stopped one's exits wait
        work += p.vm.step();
        if (p.vm.replacement) this.#swap(p, p === root ? deadline : undefined);
        else if (p.vm.ended) this.#exited(p);
        else if (p.vm.sig.stopSignal) this.#stop(p);
      }
      if (work) poller.busy(this.#live());
      if (work || root.status !== undefined || poller.idle(this.#live(), this.#live(true))) {
        continue;
      }
      let wake: bigint | undefined;
      watches.length = 0;
      for (const p of this.#procs.values()) {
        if (p.status !== undefined || p.stopped) continue;
        const at = p.vm.wakeAt();
        if (at !== undefined && (wake === undefined || at < wake)) wake = at;
        p.vm.watching(watches);
      }
      const ms = wake === undefined
        ? IDLE_MS
        : Math.min(IDLE_MS, Number(wake - monotonicNs()) / 1e6);
      if (ms <= 0) continue;
      waitWatched(this.#wakeFd, watches, BigInt(Math.round(ms * 1e6)));
      drainEventfd(this.#wakeFd);
    }
    // Nobody polls until the next slice: guests ring the doorbell meanwhile.
    poller.stop(this.#live(), this.#live(true));
  }

  /** execve done: the process goes on in its new image. */
  #swap(p: Proc, deadline?: bigint): void {
    const old = p.vm, next = old.replacement!;
    p.vm = next;
    p.execed = true;
    addImage(p.stats, old.finish(true));
    p.stats.command = newStats(0, 0, next).command;
    this.#releaseVfork(p, old);
    if (old !== this.#first) old.dispose();
    if (p === this.#root) this.#watchSignals(next);
    next.begin(deadline);
    if (this.#multi) this.#schedule(next);
  }

  /** `p` has ended: a zombie for its parent, which learns by SIGCHLD; its children go to init. */
  #exited(p: Proc): void {
    const end = p.vm.ended!;
    if (p !== this.#root) {
      addImage(p.stats, p.vm.finish());
      p.stats.ppid = p.ppid;
      this.#ended.push(p.stats);
    }
    this.#releaseVfork(p, p.vm);
    // No core is dumped (as with RLIMIT_CORE 0): a signal's status has no 0x80 bit.
    p.status = end.signal ? end.signal & 0x7f : (end.code & 0xff) << 8;
    for (const w of p.endWatchers ?? []) w();
    if (p !== this.#root) p.vm.dispose();
    // Orphans go to init, outside the guest (pid 1), as on the host: getppid
    // says 1, no guest process can wait for them, and they are reaped when
    // they end. Zombies among them go at once.
    for (const c of p.children) {
      c.ppid = INIT_PID;
      if (c.status === undefined) c.vm.setParent(INIT_PID);
      else this.#procs.delete(c.pid);
    }
    p.children.clear();
    if (p === this.#root) return;
    const parent = this.#procs.get(p.ppid);
    if (!parent || parent.status !== undefined) return this.#reap(p);
    const act = parent.vm.sig.action(SIGNO.SIGCHLD);
    const SA_NOCLDWAIT = 2n;
    if (act.handler === SIG_IGN || (act.flags & SA_NOCLDWAIT)) this.#reap(p);
    if (act.handler !== SIG_IGN) parent.vm.raise(this.#childInfo(p));
    for (const w of [...parent.waiters]) w();
  }

  /**
   * `p` took a stop signal: its vCPUs are kicked out of the guest and their
   * exits wait unserved; its parent learns by SIGCHLD (CLD_STOPPED) unless
   * SA_NOCLDSTOP, and by wait with WSTOPPED/WUNTRACED.
   */
  #stop(p: Proc): void {
    const sig = p.vm.sig.stopSignal;
    p.vm.sig.stopSignal = 0;
    if (p.stopped) return;
    p.stopped = true;
    p.vm.halt();
    this.#tellParent(p, { continued: false, sig });
  }

  /** SIGCONT (or SIGKILL, `quiet`) to stopped `p`: served again; the parent learns of it. */
  #continue(p: Proc, quiet = false): void {
    if (!p.stopped) return;
    p.stopped = false;
    if (!quiet) this.#tellParent(p, { continued: true, sig: SIGNO.SIGCONT });
  }

  /** A child stopped or continued: the report waits for its parent, SIGCHLD goes to it. */
  #tellParent(p: Proc, report: { continued: boolean; sig: number }): void {
    p.report = report;
    const parent = this.#procs.get(p.ppid);
    if (!parent || parent.status !== undefined) return;
    const act = parent.vm.sig.action(SIGNO.SIGCHLD), SA_NOCLDSTOP = 1n;
    if (act.handler !== SIG_IGN && !(act.flags & SA_NOCLDSTOP)) {
      parent.vm.raise(this.#childInfo(p, report));
    }
    for (const w of [...parent.waiters]) w();
  }

  /** A vfork child called execve or ended: its parent's thread goes on. */
  #releaseVfork(p: Proc, image: Guest): void {
    const v = p.vforkOf;
    if (!v) return;
    p.vforkOf = undefined;
    if (v.parent.status !== undefined) return;
    releaseVfork(v.parent.vm, image, v.tid, p.pid);
    this.#poller!.adopt(v.parent.vm); // its polling word, as the loan left it
  }

  /** The siginfo of SIGCHLD (and waitid) for ended child `c`, or for its stop or continuation. */
  #childInfo(
    c: Proc,
    report?: { continued: boolean; sig: number },
  ): { signo: number; code: number; raw: Uint8Array } {
    const raw = new Uint8Array(128), v = new DataView(raw.buffer);
    let code: number, status: number;
    if (report) {
      code = report.continued ? CLD.CONTINUED : CLD.STOPPED;
      status = report.sig;
    } else {
      const s = c.status!, signal = s & 0x7f;
      code = signal ? (s & 0x80 ? CLD.DUMPED : CLD.KILLED) : CLD.EXITED;
      status = signal ? signal : (s >> 8) & 0xff;
    }
    v.setInt32(0, SIGNO.SIGCHLD, true);
    v.setInt32(8, code, true);
    v.setInt32(16, c.pid, true);
    v.setUint32(20, Deno.uid() ?? 0, true);
    v.setInt32(24, status, true);
    return { signo: SIGNO.SIGCHLD, code, raw };
  }

  /** Forgets zombie `c`: its pid is free again. */
  #reap(c: Proc): void {
    this.#procs.delete(c.pid);
    this.#procs.get(c.ppid)?.children.delete(c);
  }

  /** The {@linkcode ProcessHost} that process `p`'s syscalls see. */
  hostFor(p: Proc): ProcessHost {
    return new Host(this, p);
  }

  /** fork/vfork/clone of a new process by `parent`'s serving thread. */
  fork(parent: Proc, spec: CloneSpec): number {
    let live = 0;
    for (const q of this.#procs.values()) if (q.status === undefined) live++;
    if (live >= this.maxProcesses) throw new SyscallError(E.EAGAIN);
    // No other thread may be inside mmap & co. while the memory is copied.
    const unlockMm = lockMm(parent.vm);
    if (!unlockMm) return 0; // runs again in a moment (parked)
    let vm: Guest, pid: number, vfork: boolean, tid: number;
    try {
      pid = this.allocId();
      this.#goMulti();
      vfork = (spec.flags & CLONE_VFORK) !== 0n;
      tid = currentTid(parent);
      if (vfork) holdForVfork(parent.vm);
      vm = forkGuest(parent.vm, pid, spec);
    } finally {
      unlockMm();
    }
    const child: Proc = {
      pid,
      ppid: parent.pid,
      pgid: parent.pgid,
      sid: parent.sid,
      vm,
      children: new Set(),
      waiters: new Set(),
      vforkOf: vfork ? { parent, tid } : undefined,
      stats: newStats(pid, parent.pid, vm),
      started: boottimeNs(),
    };
    if (vm.loan) child.stats.onLoan = true;
    this.#procs.set(pid, child);
    attachProcesses(vm.process!, this.hostFor(child));
    parent.children.add(child);
    this.#started++;
    // A process that ran alone on this thread goes on among the others.
    parent.vm.handOff();
    vm.begin(); // its clock (--stats); the run's deadline is the first process's
    this.#schedule(vm);
    return pid;
  }

  /** execve: `p`'s new image (its old one ends when this call returns). */
  exec(p: Proc, path: string, argv: string[], envp: string[]): void {
    const next = execImage(p.vm, path, argv, envp, this.#multi);
    setComm(next.process!, path); // as Linux: the file's name, not argv[0]
    p.vm.replaceWith(next);
  }

  /**
   * wait4/waitid for the serving thread of `p`: a child that `match`es and
   * has ended is reported by `reply` (and reaped unless `keep`), now or when
   * one ends (the thread parks meanwhile); ECHILD when none can match,
   * 0 with `nohang` while they all run.
   */
  wait(
    p: Proc,
    threads: ThreadHost,
    match: WaitMatch,
    opts: WaitOptions,
    reply: (pid: number, info: Uint8Array, status: number) => bigint,
  ): bigint {
    const attempt = (): bigint | undefined => {
      let any = false;
      for (const c of p.children) {
        if (!matches(c, match)) continue;
        any = true;
        const rep = c.report;
        if (c.status === undefined) {
          if (!rep || !(rep.continued ? opts.continued : opts.stopped)) continue;
          // As wait(2) encodes them: 0x7f with the signal, or 0xffff.
          const st = rep.continued ? 0xffff : (rep.sig << 8) | 0x7f;
          const r = reply(c.pid, this.#childInfo(c, rep).raw, st);
          if (!opts.keep) c.report = undefined;
          return r;
        }
        if (!opts.exited) continue;
        const r = reply(c.pid, this.#childInfo(c).raw, c.status);
        if (!opts.keep) this.#reap(c);
        return r;
      }
      if (!any) return BigInt(-E.ECHILD);
      return opts.nohang ? 0n : undefined;
    };
    const now = attempt();
    if (now !== undefined) return now;
    const tid = threads.current;
    const waiter = () => {
      const r = attempt();
      if (r === undefined) return false;
      p.waiters.delete(waiter);
      threads.resume(tid, r);
      return true;
    };
    threads.park(MAX_NS, () => {}, () => {
      p.waiters.delete(waiter);
      threads.resume(tid, BigInt(-ERESTARTSYS));
    });
    p.waiters.add(waiter);
    return 0n;
  }

  /** kill(2) from `from`: to a pid, a group (0: its own, < -1: -pid) or all (-1). */
  kill(from: Proc, pid: number, sig: number): number {
    if (sig < 0 || sig > 64) throw new SyscallError(E.EINVAL);
    const targets = [...this.#procs.values()].filter((t) =>
      pid > 0
        ? t.pid === pid
        : pid === 0
        ? t.pgid === from.pgid
        : pid === -1
        ? t !== from && t !== this.#root
        : t.pgid === -pid
    );
    if (!targets.length) throw new SyscallError(E.ESRCH);
    if (sig === 0) return 0;
    for (const t of targets) {
      if (t.status !== undefined) continue; // a zombie takes no signal
      // SIGCONT continues a stopped process as it is sent; SIGKILL kills it.
      if (sig === SIGNO.SIGCONT || sig === SIGNO.SIGKILL) this.#continue(t, sig === SIGNO.SIGKILL);
      t.vm.raise({ signo: sig, code: SI.USER, pid: from.pid, uid: Deno.uid() ?? 0 });
    }
    return 0;
  }

  /** setpgid(2) by `from`. */
  setpgid(from: Proc, pid: number, pgid: number): number {
    const who = pid === 0 ? from : this.#procs.get(pid);
    if (pgid < 0) throw new SyscallError(E.EINVAL);
    if (!who || (who !== from && who.ppid !== from.pid) || who.status !== undefined) {
      throw new SyscallError(E.ESRCH);
    }
    if (who !== from && who.execed) throw new SyscallError(E.EACCES);
    if (who.sid !== from.sid || who.sid === who.pid) throw new SyscallError(E.EPERM);
    const group = pgid || who.pid;
    if (group !== who.pid) {
      const member = [...this.#procs.values()].some((q) => q.pgid === group && q.sid === from.sid);
      if (!member) throw new SyscallError(E.EPERM);
    }
    who.pgid = group;
    return 0;
  }

  /** getpgid(2)/getsid(2): `field` of `pid` (0: the caller). */
  idOf(from: Proc, pid: number, field: "pgid" | "sid"): number {
    const who = pid === 0 ? from : this.#procs.get(pid);
    if (!who) throw new SyscallError(E.ESRCH);
    return who[field];
  }

  /** setsid(2). */
  setsid(from: Proc): number {
    if ([...this.#procs.values()].some((q) => q.pgid === from.pid)) {
      throw new SyscallError(E.EPERM);
    }
    from.sid = from.pid;
    from.pgid = from.pid;
    return from.pid;
  }

  /** {@linkcode ProcessHost.watchEnd} of process `pid`. */
  watchEnd(pid: number, onEnd: () => void): () => void {
    const p = this.#procs.get(pid);
    if (!p) throw new SyscallError(E.ESRCH);
    if (p.status !== undefined) {
      onEnd();
      return () => {};
    }
    (p.endWatchers ??= new Set()).add(onEnd);
    return () => p.endWatchers?.delete(onEnd);
  }

  /** {@linkcode ProcessHost.signal}: `info` for process `pid` alone. */
  signal(pid: number, info: SigInfo): number {
    const p = this.#procs.get(pid);
    if (!p) throw new SyscallError(E.ESRCH);
    if (info.signo < 0 || info.signo > 64) throw new SyscallError(E.EINVAL);
    if (info.signo !== 0 && p.status === undefined) p.vm.raise(info);
    return 0;
  }

  /** Live and zombie processes (for /proc and --stats). */
  all(): Proc[] {
    return [...this.#procs.values()];
  }
}

const MAX_NS = 0x7fffffffffffffffn;
/** Where orphans go: the host's init, which no guest process is. */
const INIT_PID = 1;
const CLONE_VFORK = 0x4000n;

/** The thread of `p` whose call is being served. */
function currentTid(p: Proc): number {
  return threadsOf(p.vm.process!)?.current ?? p.pid;
}
const ERESTARTSYS = 512;

function matches(c: Proc, m: WaitMatch): boolean {
  switch (m.kind) {
    case "any":
      return true;
    case "pid":
      return c.pid === m.id;
    case "pgid":
      return c.pgid === m.id;
  }
}
