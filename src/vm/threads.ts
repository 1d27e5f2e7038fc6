/**
 * Guest threads, one vCPU each. vCPU 0 (the first thread) runs on the main
 * host thread; every other runs on a Deno Worker of its own (see
 * vcpu_worker.ts), so guest code runs in parallel on the host's cores. The
 * main thread serves every host call: a worker's exit waits in its control
 * words until main picks it up, between its own KVM_RUNs (the worker kicks
 * it) or while main itself waits. Workers and vCPUs of ended threads are
 * kept for the next clone; KVM cannot destroy a single vCPU.
 * @module
 */
import type { VcpuFd, VmFd } from "../kvm/ioctls.ts";
import { E, SyscallError } from "../syscalls/errno.ts";
import type { CloneSpec, ThreadHost } from "../syscalls/thread.ts";
import { monotonicNs } from "../syscalls/signal.ts";
import { MAX_CPUS } from "./percpu.ts";
import { CTL, gettid, kick, type WorkerInit, WSTATE } from "./wire.ts";

/** One vCPU and, but for vCPU 0, the worker that runs it. */
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
  /** Set while its thread waits in a parked syscall. */
  parked?: { deadline: bigint; onTimeout: () => void; onInterrupt?: () => void };
  worker?: Worker;
  ctl?: Int32Array;
  /** The worker's host thread id. */
  hostTid?: number;
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
  /** `cpu`'s clear-child-tid address (set_tid_address, CLONE_CHILD_CLEARTID). */
  clearTid(cpu: Cpu): bigint;
}

/** The VM's threads (a {@linkcode ThreadHost} for the syscall modules). */
export class Threads implements ThreadHost {
  readonly cpus: Cpu[];
  #pool: Cpu[] = [];
  #vm: ThreadVm;
  #door = new Int32Array(new SharedArrayBuffer(4));
  #mainTid = gettid();
  #nextTid: number;
  /** The thread whose exit is being served. */
  serving: Cpu;

  constructor(vm: ThreadVm, main: Cpu, pid: number) {
    this.#vm = vm;
    this.cpus = [main];
    this.serving = main;
    this.#nextTid = pid + 1;
  }

  /** The main thread's vCPU. */
  get main(): Cpu {
    return this.cpus[0];
  }

  get current(): number {
    return this.serving.tid;
  }

  get onMain(): boolean {
    return this.serving.id === 0;
  }

  get count(): number {
    return this.cpus.filter((c) => c.alive).length;
  }

  spawn(spec: CloneSpec): number {
    if (this.count >= MAX_CPUS) throw new SyscallError(E.EAGAIN);
    const cpu = this.#pool.pop() ?? this.#newCpu();
    this.#ready(cpu);
    // Start the next worker now, while this thread runs: a program that
    // starts one thread per core should not wait for each in turn.
    if (
      !this.#pool.length && this.cpus.length < Math.min(MAX_CPUS, navigator.hardwareConcurrency + 1)
    ) {
      this.#pool.push(this.#newCpu());
    }
    const tid = this.#nextTid++;
    this.#vm.setupChild(cpu, this.serving, spec, tid);
    cpu.tid = tid;
    cpu.alive = true;
    Atomics.store(cpu.ctl!, CTL.state, WSTATE.RUN);
    Atomics.notify(cpu.ctl!, CTL.state);
    return tid;
  }

  #newCpu(): Cpu {
    const id = this.cpus.length;
    const vcpu = this.#vm.vm.createVcpu(id);
    const { addr, view } = this.#vm.mapRun(vcpu);
    const ctl = new Int32Array(new SharedArrayBuffer(CTL.size * 4));
    const worker = new Worker(new URL("./vcpu_worker.ts", import.meta.url), { type: "module" });
    const init: WorkerInit = {
      vcpuFd: vcpu.fd,
      runAddr: addr.toString(),
      mainRunAddr: this.main.runAddr.toString(),
      pid: Deno.pid,
      mainTid: this.#mainTid,
      ctl: ctl.buffer as SharedArrayBuffer,
      door: this.#door.buffer as SharedArrayBuffer,
    };
    worker.postMessage(init);
    const cpu: Cpu = {
      id,
      vcpu,
      runAddr: addr,
      runView: view,
      tid: 0,
      alive: false,
      worker,
      ctl,
    };
    this.cpus.push(cpu);
    return cpu;
  }

  /**
   * Waits until `cpu`'s worker runs and has told its host thread id; it
   * needs no help from this thread's event loop to start.
   */
  #ready(cpu: Cpu): void {
    if (cpu.hostTid !== undefined) return;
    const ctl = cpu.ctl!, until = performance.now() + 10_000;
    while (Atomics.load(ctl, CTL.tid) === 0) {
      if (performance.now() > until) throw new Error("hermitux: a vCPU worker did not start");
      Atomics.wait(ctl, CTL.tid, 0, 5);
    }
    cpu.hostTid = Atomics.load(ctl, CTL.tid);
  }

  exitCurrent(): bigint {
    const cpu = this.serving;
    cpu.alive = false;
    return this.#vm.clearTid(cpu);
  }

  park(deadline: bigint, onTimeout: () => void, onInterrupt?: () => void): void {
    if (this.onMain) throw new Error("the main thread cannot park");
    this.serving.parked = { deadline, onTimeout, onInterrupt };
  }

  /**
   * Gets worker `cpu` to act on a signal: a parked wait ends (EINTR unless
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
    Atomics.store(cpu.ctl!, CTL.intr, 1);
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

  /** Lets a served worker go on: run again, or back to the pool if its thread ended. */
  #release(cpu: Cpu): void {
    if (cpu.alive) {
      Atomics.store(cpu.ctl!, CTL.state, WSTATE.RUN);
    } else {
      cpu.tid = 0;
      Atomics.store(cpu.ctl!, CTL.state, WSTATE.IDLE);
      this.#pool.push(cpu);
    }
    Atomics.notify(cpu.ctl!, CTL.state);
  }

  /** Serves every worker waiting with an exit; fires parked timeouts. Returns how many. */
  serveWorkers(now?: bigint): number {
    let served = 0;
    for (let i = 1; i < this.cpus.length; i++) {
      const cpu = this.cpus[i];
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
      if (!cpu.parked) this.#release(cpu);
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

  /** Whether a worker waits to be served. */
  pending(): boolean {
    return this.cpus.some((c) =>
      c.id !== 0 && c.alive && !c.parked && !c.busy &&
      Atomics.load(c.ctl!, CTL.state) === WSTATE.EXITED
    );
  }

  /**
   * Waits on the main thread, up to `ms`, until a worker has an exit to
   * serve; serves them and parked timeouts.
   */
  idle(ms: number): void {
    const seen = Atomics.load(this.#door, 0);
    if (!this.pending()) Atomics.wait(this.#door, 0, seen, Math.max(0, ms));
    this.serveWorkers();
  }

  has(tid: number): boolean {
    return this.cpus.some((c) => c.alive && c.tid === tid);
  }

  barrier(): void {
    for (const c of this.cpus.slice(1)) {
      if (c.alive && c !== this.serving && Atomics.load(c.ctl!, CTL.state) === WSTATE.RUN) {
        kick(c.runAddr, Deno.pid, c.hostTid!);
      }
    }
  }

  /** Stops every worker (end of the run): quits them and kicks them out of KVM_RUN. */
  stopAll(): void {
    for (const c of this.cpus.slice(1)) this.#ready(c);
    for (const c of this.cpus.slice(1)) {
      c.alive = false;
      c.parked = undefined;
      Atomics.store(c.ctl!, CTL.state, WSTATE.QUIT);
      Atomics.notify(c.ctl!, CTL.state);
      kick(c.runAddr, Deno.pid, c.hostTid!);
    }
    // Give each a moment to leave KVM_RUN before its vCPU goes away.
    const until = performance.now() + 1000;
    for (const c of this.cpus.slice(1)) {
      while (performance.now() < until && Atomics.load(c.ctl!, CTL.done) === 0) {
        Atomics.wait(c.ctl!, CTL.done, 0, 1);
      }
      c.worker?.terminate();
    }
  }
}
