/**
 * Guest threads, one vCPU each. Every vCPU runs on a runner thread of its
 * own (src/runner), so guest code runs in parallel on the host's cores;
 * with the doorbell transport alone, vCPU 0 (the first thread) runs on the
 * main host thread instead. The main thread serves every host call: a
 * runner's exit waits in its control words until main picks it up, between
 * its own KVM_RUNs (the runner kicks it) or while main itself waits.
 * Runners and vCPUs of ended threads are kept for the next clone; KVM
 * cannot destroy a single vCPU.
 * @module
 */
import type { VcpuFd, VmFd } from "../kvm/ioctls.ts";
import { E, SyscallError } from "../syscalls/errno.ts";
import { type CloneSpec, type ThreadHost, WouldBlock } from "../syscalls/thread.ts";
import { monotonicNs, pollFd, ppoll } from "../syscalls/signal.ts";
import { MAX_CPUS } from "./percpu.ts";
import { LAYOUTS } from "../kvm/structs.ts";
import { futexWait, Runner, sharedPage } from "../runner/mod.ts";
import { drainEventfd } from "./wake.ts";
import { CTL, gettid, kick, WSTATE } from "./wire.ts";
import { hostClockNs } from "../syscalls/host.ts";

const POLLIN = 1;

/** One vCPU and the runner thread that runs it (none: the main thread runs it). */
export interface Cpu {
  readonly id: number;
  readonly vcpu: VcpuFd;
  /** Its `struct kvm_run`. */
  readonly runAddr: bigint;
  readonly runView: DataView;
  /** The guest thread it runs now (0 when idle). */
  tid: number;
  alive: boolean;
  /** Whether the main thread is serving its exit now. */
  busy?: boolean;
  /** Whether it has run a thread before (its CPUID is set for good). */
  ran?: boolean;
  /** Offset of its host-call block in guest memory. */
  hc?: number;
  /** Set while its thread waits in a parked syscall. */
  parked?: {
    deadline: bigint;
    onTimeout: () => void;
    onInterrupt?: () => void;
    /** Host pollfds whose readiness makes the deadline now (see waitDoor). */
    watch?: Uint8Array;
  };
  runner?: Runner;
  /** The runner's control words (`CTL`). */
  ctl?: Int32Array;
  /** The runner it lent to a vfork child, which has it meanwhile (loan.ts). */
  lent?: Runner;
  /** Its runner is another process's, lent (a vfork child on its parent's machine: loan.ts). */
  borrowed?: boolean;
  /** The runner's host thread id. */
  hostTid?: number;
  /** Its host thread's CPU time (ns) less that of the guest thread it runs (see cpuTime). */
  cpuBase?: bigint;
  /** Kicked for the profiler: its stack is read when the kick's exit is served. */
  sample?: boolean;
}

/** What the VM does for the thread machinery. */
export interface ThreadVm {
  readonly vm: VmFd;
  readonly runSize: number;
  /** Makes `child` start as clone's child of `parent` (registers, tables, TLS). */
  setupChild(child: Cpu, parent: Cpu, spec: CloneSpec, tid: number): void;
  /** Serves `cpu`'s pending exit (a host call or a fault). */
  serveExit(cpu: Cpu): void;
  /** Maps a vCPU's `struct kvm_run`. */
  mapRun(vcpu: VcpuFd): { addr: bigint; view: DataView };
  /** After a parked thread's result is set: act on its signals (as after any syscall). */
  afterResume(cpu: Cpu, ret: bigint): void;
  /** Makes `cpu` run its syscall again when it next runs (registers from its syscall frame). */
  restartSyscall(cpu: Cpu): void;
  /** Writes a syscall result into `cpu`'s host-call block. */
  setRet(cpu: Cpu, ret: bigint): void;
  /** Whether `cpu`'s thread has a signal to act on (pending and not blocked). */
  signalled(cpu: Cpu): boolean;
  /** Whether the process has ended (nothing runs again). */
  ended(): boolean;
  /** `cpu`'s clear-child-tid address (set_tid_address, CLONE_CHILD_CLEARTID). */
  clearTid(cpu: Cpu): bigint;
}

let door: ReturnType<typeof sharedPage> | undefined;

/** The control words of a vCPU whose runner went to another one: stopped and left. */
const STOPPED = (() => {
  const w = new Int32Array(CTL.size);
  w[CTL.state] = WSTATE.QUIT;
  w[CTL.done] = 1;
  return w;
})();

/**
 * The door every runner of this host process bumps at each exit: one for
 * all VMs, so that the main thread, serving several guest processes, waits
 * on one word.
 */
function doorPage(): ReturnType<typeof sharedPage> {
  return door ??= sharedPage();
}

/** The VM's threads (a {@linkcode ThreadHost} for the syscall modules). */
export class Threads implements ThreadHost {
  readonly cpus: Cpu[];
  #pool: Cpu[] = [];
  #vm: ThreadVm;
  #doorPage = doorPage();
  #door = this.#doorPage.words;
  #mainTid = gettid();
  #nextTid: () => number;
  /** The thread whose exit is being served. */
  serving: Cpu;
  /** Set while serving a call that came exitless (its vCPU runs: it cannot park). */
  polled = false;

  /**
   * @param main vCPU 0, running the first thread
   * @param onRunner whether vCPU 0 runs on a runner thread too (else on this one)
   */
  /**
   * An eventfd that runners write at each exit, and that guests' kicks
   * write through KVM (exitless transport); -1: none, wait on the door.
   */
  wakeFd: number;

  /**
   * Makes every runner, now and later, write `fd` at each exit: the process
   * table's one eventfd, once the main thread serves several processes.
   */
  useWakeFd(fd: number): void {
    this.wakeFd = fd;
    for (const c of this.cpus) c.runner?.setWakeFd(fd);
  }

  /**
   * @param nextTid gives the id of each new thread (one numbering with the
   *   process table's pids)
   */
  constructor(
    vm: ThreadVm,
    main: Cpu,
    pid: number,
    nextTid: () => number,
    onRunner = false,
    wakeFd = -1,
    runner?: Runner,
  ) {
    this.#vm = vm;
    this.wakeFd = wakeFd;
    this.cpus = [main];
    this.serving = main;
    this.#nextTid = nextTid;
    if (onRunner) {
      this.#attach(main, runner);
      this.#ready(main);
      main.tid = pid;
      main.alive = true;
    }
    main.cpuBase = this.#hostCpu(main);
  }

  /** CPU time of guest threads that have ended (ns). */
  #endedCpu = 0n;

  /** The CPU time (ns) of the host thread that runs `cpu` (the main thread's if no runner). */
  #hostCpu(cpu: Cpu): bigint {
    const tid = cpu.runner || cpu.lent ? cpu.hostTid ?? 0 : this.#mainTid;
    // Linux's thread CPU clock id, MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED).
    return threadCpuNs((~BigInt(tid) << 3n) | 6n);
  }

  cpuTime(tid?: number): bigint | undefined {
    const of = (c: Cpu) => this.#hostCpu(c) - (c.cpuBase ?? 0n);
    if (tid !== undefined) {
      const cpu = this.cpus.find((c) => c.alive && c.tid === tid);
      return cpu ? of(cpu) : undefined;
    }
    return this.cpus.reduce((sum, c) => c.alive ? sum + of(c) : sum, this.#endedCpu);
  }

  /**
   * Gives vCPU 0, which the main thread ran, a runner of its own (the main
   * thread then serves several processes): other runners stop kicking the
   * main thread, and vCPU 0's FPU state moves to its runner's thread.
   * The caller starts it ({@linkcode startMain}) once it may run.
   */
  moveMainToRunner(xsave: Uint8Array): void {
    const main = this.main;
    if (main.runner) return;
    for (const c of this.cpus) c.runner?.setKick(0n, 0);
    const used = this.#hostCpu(main) - (main.cpuBase ?? 0n);
    this.#attach(main);
    this.#ready(main);
    // The thread goes on counting from what it used on this one.
    main.cpuBase = this.#hostCpu(main) - used;
    main.vcpu.setXsave(xsave);
  }

  /** Lets vCPU 0's runner run the first thread (when vCPU 0 has one). */
  startMain(): void {
    this.#setState(this.main, WSTATE.RUN);
  }

  /** Whether the main thread runs a vCPU itself (vCPU 0 has no runner). */
  get mainRuns(): boolean {
    return !this.main.runner;
  }

  /** The main thread's vCPU. */
  get main(): Cpu {
    return this.cpus[0];
  }

  get current(): number {
    return this.serving.tid;
  }

  /** Whether the thread being served runs on the main host thread (so it cannot park). */
  get onMain(): boolean {
    return !this.serving.runner;
  }

  get count(): number {
    return this.cpus.filter((c) => c.alive).length;
  }

  list(): { tid: number; parked: boolean }[] {
    return this.cpus.filter((c) => c.alive).map((c) => ({ tid: c.tid, parked: !!c.parked }));
  }

  /** At most this many threads alive at once (a vfork child on its parent's machine: 1). */
  limit = MAX_CPUS;

  spawn(spec: CloneSpec): number {
    if (this.count >= Math.min(MAX_CPUS, this.limit)) throw new SyscallError(E.EAGAIN);
    const cpu = this.#pool.pop() ?? this.#newCpu();
    this.#ready(cpu);
    // Start the next runner now, while this thread runs: a program that
    // starts one thread per core should not wait for each in turn.
    if (
      !this.#pool.length && this.cpus.length < Math.min(MAX_CPUS, navigator.hardwareConcurrency + 1)
    ) {
      this.#pool.push(this.#newCpu());
    }
    const tid = this.#nextTid();
    this.#vm.setupChild(cpu, this.serving, spec, tid);
    cpu.tid = tid;
    cpu.alive = true;
    cpu.cpuBase = this.#hostCpu(cpu);
    this.#setState(cpu, WSTATE.RUN);
    return tid;
  }

  #newCpu(): Cpu {
    const id = this.cpus.length;
    const vcpu = this.#vm.vm.createVcpu(id);
    const { addr, view } = this.#vm.mapRun(vcpu);
    const cpu: Cpu = { id, vcpu, runAddr: addr, runView: view, tid: 0, alive: false };
    this.#attach(cpu);
    this.cpus.push(cpu);
    return cpu;
  }

  /** Starts a runner thread for `cpu`, or gives it `lent`, the runner that runs its vCPU already. */
  #attach(cpu: Cpu, lent?: Runner): void {
    const mainRuns = cpu !== this.main && this.mainRuns;
    if (lent) {
      cpu.runner = lent;
      cpu.ctl = lent.ctl;
      cpu.borrowed = true;
      return;
    }
    cpu.runner = Runner.start({
      vcpuFd: cpu.vcpu.fd,
      runAddr: cpu.runAddr,
      door: this.#doorPage.addr,
      kickRun: mainRuns ? this.main.runAddr : 0n,
      kickTid: mainRuns ? this.#mainTid : 0,
      wakeFd: this.wakeFd,
    });
    cpu.ctl = cpu.runner.ctl;
    cpu.vcpu.via = cpu.runner;
  }

  /** Hands `cpu`'s runner a new state and wakes it. */
  #setState(cpu: Cpu, state: number): void {
    cpu.runner!.settle(); // a call begun there ends with its state put back
    Atomics.store(cpu.ctl!, CTL.state, state);
    cpu.runner!.wake();
  }

  /** Waits until `cpu`'s runner runs and has told its host thread id. */
  #ready(cpu: Cpu): void {
    if (cpu.hostTid !== undefined) return;
    const ctl = cpu.ctl!, until = performance.now() + 10_000;
    while (Atomics.load(ctl, CTL.tid) === 0) {
      if (performance.now() > until) throw new Error("hermitux: a vCPU runner did not start");
      cpu.runner!.wait(CTL.tid, 0, 5);
    }
    cpu.hostTid = Atomics.load(ctl, CTL.tid);
  }

  exitCurrent(): bigint {
    const cpu = this.serving;
    this.#endedCpu += this.#hostCpu(cpu) - (cpu.cpuBase ?? 0n);
    cpu.alive = false;
    return this.#vm.clearTid(cpu);
  }

  park(
    deadline: bigint,
    onTimeout: () => void,
    onInterrupt?: () => void,
    watch?: Uint8Array,
  ): void {
    if (this.polled) throw new WouldBlock();
    if (this.onMain) throw new Error("the main thread cannot park");
    this.serving.parked = { deadline, onTimeout, onInterrupt, watch };
  }

  /**
   * Gets runner `cpu` to act on a signal: a parked wait ends (EINTR unless
   * its own `onInterrupt` says otherwise); a running vCPU is kicked out of
   * KVM_RUN and reports it. One that waits to be served acts after its call.
   */
  interrupt(cpu: Cpu): void {
    if (cpu.parked) {
      const { onInterrupt } = cpu.parked;
      if (onInterrupt) onInterrupt();
      else this.resume(cpu.tid, -4n); // EINTR
      return;
    }
    if (cpu.busy || Atomics.load(cpu.ctl!, CTL.state) !== WSTATE.RUN) return;
    // A kick under way (1, or 2 while its exit is reported) does for this one too.
    if (Atomics.compareExchange(cpu.ctl!, CTL.intr, 0, 1) !== 0) return;
    kick(cpu.runAddr, Deno.pid, cpu.hostTid!);
  }

  resume(tid: number, ret: bigint): void {
    const cpu = this.cpus.find((c) => c.alive && c.tid === tid && c.parked);
    if (!cpu) return;
    cpu.parked = undefined;
    this.#vm.setRet(cpu, ret);
    this.#vm.afterResume(cpu, ret);
    this.#release(cpu);
  }

  restart(tid: number): void {
    const cpu = this.cpus.find((c) => c.alive && c.tid === tid && c.parked);
    if (!cpu) return;
    cpu.parked = undefined;
    this.#vm.restartSyscall(cpu);
    this.#release(cpu);
  }

  /** Lets a served runner go on: run again, or back to the pool if its thread ended. */
  #release(cpu: Cpu): void {
    // A kick that came as it exited anyway is spent: left set, the next
    // KVM_RUN would return at once, and on older kernels it does so before
    // applying the registers set in kvm_run's sync area, then overwrites
    // them there (a signal frame just built would be lost).
    cpu.runView.setUint8(LAYOUTS.kvm_run.fields.immediate_exit, 0);
    if (cpu.alive) {
      this.#setState(cpu, WSTATE.RUN);
    } else {
      cpu.tid = 0;
      this.#pool.push(cpu);
      this.#setState(cpu, WSTATE.IDLE);
    }
  }

  /** Serves every runner waiting with an exit; fires parked timeouts. Returns how many. */
  serveWorkers(now?: bigint): number {
    let served = 0;
    for (const cpu of this.cpus) {
      if (!cpu.runner) continue;
      if (cpu.parked) {
        if (cpu.parked.deadline <= (now ??= monotonicNs())) {
          const { onTimeout } = cpu.parked;
          const outer = this.serving;
          this.serving = cpu;
          onTimeout();
          this.serving = outer;
        }
        continue;
      }
      if (!cpu.alive || cpu.busy || Atomics.load(cpu.ctl!, CTL.state) !== WSTATE.EXITED) continue;
      // A handler that waits on the main thread serves the others meanwhile
      // (nested); never the one it is serving.
      const outer = this.serving;
      this.serving = cpu;
      cpu.busy = true;
      try {
        this.#vm.serveExit(cpu);
      } finally {
        cpu.busy = false;
        this.serving = outer;
      }
      served++;
      // A signal raised while its call was served (a timer that fired
      // meanwhile) interrupts the wait it just began; that resumes it, and
      // it must not be released twice (it may have exited again by then).
      // Once the process has ended (exit_group) its threads stay stopped.
      if (this.#vm.ended()) continue;
      if (cpu.parked && this.#vm.signalled(cpu)) this.interrupt(cpu);
      else if (!cpu.parked) this.#release(cpu);
    }
    return served;
  }

  /** The earliest parked deadline (host monotonic ns), or undefined. */
  nextDeadline(): bigint | undefined {
    let d: bigint | undefined;
    for (const c of this.cpus) {
      if (c.parked && (d === undefined || c.parked.deadline < d)) d = c.parked.deadline;
    }
    return d;
  }

  /** Whether a runner waits to be served. */
  pending(): boolean {
    return this.cpus.some((c) =>
      c.runner && c.alive && !c.parked && !c.busy &&
      Atomics.load(c.ctl!, CTL.state) === WSTATE.EXITED
    );
  }

  /** Host address of the door's count word. */
  get doorAddress(): bigint {
    return this.#doorPage.addr;
  }

  /** The door's count: it changes at every runner exit. */
  get door(): number {
    return Atomics.load(this.#door, 0);
  }

  /**
   * Waits up to `ms` for the door to leave `seen` (a runner exit), unless
   * one is pending; with a wake eventfd, for that instead (a runner exit or
   * a guest's kick), and drains it.
   */
  waitDoor(seen: number, ms: number): void {
    if (this.pending()) return;
    if (this.wakeFd < 0) return futexWait(this.#doorPage.addr, seen, Math.max(0, ms));
    if (this.door === seen) {
      const ns = BigInt(Math.max(0, Math.round(ms * 1e6)));
      const watching = this.cpus.filter((c) => c.parked?.watch?.length);
      if (watching.length) this.#waitWatched(watching, ns);
      else pollFd(this.wakeFd, POLLIN, ns);
    }
    drainEventfd(this.wakeFd);
  }

  /**
   * Looks, without waiting, whether an fd a parked wait watches is ready,
   * and makes that wait due now: for the main thread while it runs or
   * polls rather than sleeps in waitDoor.
   */
  pollWatched(): void {
    // After every exit it serves: nothing allocated unless a wait watches.
    if (!this.cpus.some((c) => c.parked?.watch)) return;
    this.#waitWatched(this.cpus.filter((c) => c.parked?.watch?.length), 0n);
  }

  #waitWatched(cpus: Cpu[], ns: bigint): void {
    waitWatched(this.wakeFd, cpus, ns);
  }

  /**
   * Waits on the main thread, up to `ms`, until a runner has an exit to
   * serve; serves them and parked timeouts.
   */
  idle(ms: number): void {
    this.waitDoor(this.door, ms);
    this.serveWorkers();
  }

  has(tid: number): boolean {
    return this.cpus.some((c) => c.alive && c.tid === tid);
  }

  barrier(): void {
    for (const c of this.cpus.filter((c) => c.runner)) {
      if (c.alive && c !== this.serving && Atomics.load(c.ctl!, CTL.state) === WSTATE.RUN) {
        kick(c.runAddr, Deno.pid, c.hostTid!);
      }
    }
  }

  /**
   * Stops every runner (the process's end): one whose exit waits, or that
   * never ran, goes idle for another vCPU of this host process (Runner.release);
   * one in KVM_RUN is told to quit and kicked out; a borrowed one (a vfork
   * child's) is halted and left for its lender (loan.ts).
   */
  stopAll(): void {
    for (const c of this.cpus) if (c.runner) this.#ready(c);
    const runners: Cpu[] = [];
    for (const c of this.cpus) {
      if (!c.runner) continue;
      c.alive = false;
      c.parked = undefined;
      const runner = c.runner;
      if (c.borrowed) {
        // Its lender's: out of KVM_RUN and left to it (loan.ts takes it back).
        if (!runner.halt(() => kick(c.runAddr, Deno.pid, c.hostTid!))) continue;
        c.runner = undefined;
        c.ctl = STOPPED;
        continue;
      }
      if (runner.release()) {
        // Its thread waits for another vCPU: nothing here may reach it again.
        c.runner = undefined;
        c.ctl = STOPPED;
        if (c.vcpu.via === runner) c.vcpu.via = undefined;
        continue;
      }
      runners.push(c);
      this.#setState(c, WSTATE.QUIT);
      kick(c.runAddr, Deno.pid, c.hostTid!);
    }
    // Give each a moment to leave KVM_RUN before its vCPU goes away.
    const until = performance.now() + 1000;
    for (const c of runners) {
      while (performance.now() < until && Atomics.load(c.ctl!, CTL.done) === 0) {
        c.runner!.wait(CTL.done, 0, 1);
      }
    }
  }

  /** Frees what the runners shared with this thread (after {@linkcode stopAll}). */
  dispose(): void {
    for (const c of this.cpus) c.runner?.dispose();
  }

  /** Whether every runner thread has left (none can touch what it was given). */
  runnersDone(): boolean {
    return this.cpus.every((c) => !c.runner || Atomics.load(c.ctl!, CTL.done) === 1);
  }
}

/** clock_gettime of host clock `id` in ns (0 if it fails). */
function threadCpuNs(id: bigint): bigint {
  return hostClockNs(id);
}

/**
 * Waits up to `ns` on eventfd `wakeFd` and on the fds that parked waits of
 * `cpus` watch (poll, select, epoll_wait, a blocking read or write): one of
 * them ready makes that wait due now, so its thread learns at once instead
 * of at its next look.
 */
export function waitWatched(wakeFd: number, cpus: Cpu[], ns: bigint): void {
  const all = new Uint8Array(8 + cpus.reduce((n, c) => n + c.parked!.watch!.length, 0));
  const v = new DataView(all.buffer);
  v.setInt32(0, wakeFd, true);
  v.setInt16(4, POLLIN, true);
  let at = 8;
  for (const c of cpus) {
    all.set(c.parked!.watch!, at);
    for (let i = at; i < at + c.parked!.watch!.length; i += 8) v.setInt16(i + 6, 0, true);
    at += c.parked!.watch!.length;
  }
  if (ppoll(all, ns) <= 0n) return;
  at = 8;
  for (const c of cpus) {
    const len = c.parked!.watch!.length;
    for (let i = at; i < at + len; i += 8) {
      if (v.getInt16(i + 6, true) !== 0) {
        c.parked!.deadline = 0n;
        break;
      }
    }
    at += len;
  }
}
