/**
 * One image of a guest process (execve makes the next): its machine, its
 * process state (signals, fds, mounts, threads) and the loops that serve
 * it. It runs alone on this thread (runSolo) until a fork; then the process
 * table (src/process/table.ts) drives every image with schedule/step, and
 * the other files of this folder are the work each step does.
 * @module
 */
import { PlainServer } from "./plain.ts";
import { saveSiteShapes } from "../analysis/shapecache.ts";
import { ABI, BOOT_INFO, HOSTCALL } from "../kernel/abi.ts";
import type { KernelImage } from "../kernel/image.ts";
import { closeEventfd } from "./wake.ts";
import type { VcpuFd } from "../kvm/ioctls.ts";
import { OsError } from "../kvm/libc.ts";
import { bufferAddress, hostSyscall } from "../syscalls/host.ts";
import { detectPlatform, guestCpl } from "../kvm/platform.ts";
import { LAYOUTS } from "../kvm/structs.ts";
import type { ElfFile } from "../loader/elf.ts";
import type { SyscallRegistry } from "../syscalls/registry.ts";
import { defaultRegistry } from "../syscalls/mod.ts";
import type { MountTable } from "../vfs/mounts.ts";
import { type CrashReport, formatCrash, SIG } from "./fault.ts";
import type { GuestMemory } from "./memory.ts";
import { physOf } from "./percpu.ts";
import type { ProcessTable } from "../process/table.ts";
import type { PageProtections } from "./protect.ts";
import type { Cpu, Threads } from "./threads.ts";
import { AUTO_EXITLESS_CALLS, defaultHostCalls, type HostCalls } from "./exitless.ts";
import { monotonicNs, type SigInfo, type SignalState, SIGNO } from "../syscalls/signal.ts";
import { initXsave } from "./sigframe.ts";
import type { BootOptions, RunResult, RunStats } from "./options.ts";
import { ignoreAlarms } from "./hostinfo.ts";
import type { MappedObject } from "./program.ts";
import { keepMachine, type Machine } from "./machine.ts";
import type { CpuFeatures } from "./cpu.ts";
import { onExit, runOnce } from "./hostcall.ts";
import {
  exitlessTimers,
  exitlessWake,
  pollHostCalls,
  runExitless,
  setPolling,
} from "./transport.ts";
import { deliverAsync } from "./deliver.ts";
import { resolveRewrite, type RewriteMode, rewriteStats } from "./rewrite.ts";
import { knownHostProfile } from "./hostprobe.ts";
import { type GuestProcess, writeRoutes } from "./setup.ts";
import type { Sampler } from "../profile/sampler.ts";
import type { DebugHook } from "../gdb/mod.ts";
import { type Loan, settleLoan } from "./loan.ts";

const SIGALRM_HOST = 14, SIGEV_THREAD_ID = 4, CLOCK_MONOTONIC = 1;

const NR_CLOCK_NANOSLEEP = 230;

const NR_GETTID = 186,
  NR_TIMER_CREATE = 222,
  NR_TIMER_SETTIME = 223,
  NR_TIMER_DELETE = 226;

/** The signals whose default action stops a process. */
const STOPS: number[] = [SIGNO.SIGSTOP, SIGNO.SIGTSTP, SIGNO.SIGTTIN, SIGNO.SIGTTOU];

/** After a first expiry, the host timer repeats this often until re-armed (a missed SIGALRM). */
const TIMER_REPEAT_NS = 5_000_000n;

/** {@linkcode Guest.initXsave}: 4 KiB a guest made and dropped weighed on the C heap. */
let INIT_XSAVE: Uint8Array | undefined;

/** One image of a guest process (execve makes another), and its machine. */
export class Guest implements Disposable {
  /** The KVM VM, its RAM and vCPU 0 (from set-up on). */
  machine?: Machine;
  /** The guest's RAM (the machine's). */
  mem?: GuestMemory;
  /** The vCPU being served: vCPU 0, or a thread's while {@linkcode asThread} runs. */
  vcpu?: VcpuFd;
  /** That vCPU's `kvm_run`. */
  runView?: DataView;
  /** The host CPU's features, as the vCPUs were given them. */
  features?: CpuFeatures;
  /** The guest kernel. */
  kernel?: KernelImage;
  /** The program. */
  elf!: ElfFile;
  /** Where the program was loaded. */
  base = 0;
  /** The program and its interpreter, as loaded. */
  objects: MappedObject[] = [];
  /** The process as the syscall modules see it. */
  process?: GuestProcess;
  /** Its mounts. */
  mounts?: MountTable;
  /** Its signal state. */
  sig!: SignalState;
  /** Its threads, one per vCPU. */
  threads?: Threads;
  /** Its pid and its parent's. */
  pid = 0;
  /** The parent's pid (1 once orphaned). */
  ppid = 0;
  /** Every process of the run (fork, execve, wait, kill go through it). */
  table: ProcessTable;
  /** What the run was booted with. */
  options: BootOptions;
  /** The syscall handlers. */
  registry: SyscallRegistry;
  /** --trace's output. */
  trace?: (line: string) => void;
  /** Where one-line diagnostics go. */
  diag: (message: string) => void;
  /** Syscalls named as unsupported once already (shared by the run's images). */
  warned = new Set<number>();
  /** The run's counters. */
  stats: RunStats;
  /** Page tables' base (vCPU 0's). */
  cr3 = 0n;
  /** Protections in the page tables (HC_PROT). */
  prot?: PageProtections;
  /** The end of the address range the guest may map (mmap_max). */
  userEnd = 0;
  /** The page-table pool ran out once: said once. */
  protWarned = false;
  /** A clean FPU state, for signal handlers (one for the process: it is only read). */
  get initXsave(): Uint8Array {
    return INIT_XSAVE ??= initXsave();
  }
  /** Scratch for KVM_GET_XSAVE (crash reports), made at first use. */
  get xsave(): Uint8Array {
    return this.#xsave ??= new Uint8Array(LAYOUTS.kvm_xsave.size);
  }
  #xsave?: Uint8Array;
  /** The rewriting this image uses (`auto` resolved: rewrite.ts). */
  rewriteMode: RewriteMode;
  /** --rewrite=lazy or static: page 0 holds the zpoline trampoline. */
  rewrite = false;
  /** --rewrite=lazy. */
  lazy = false;
  /** --rewrite=stub: sites become jumps to stubs, once the host agrees (HC_REWRITE). */
  stubs = false;
  /** --rewrite=stub: HC_REWRITE questions answered, and the host's time on them (ms). */
  rewriteAsked = 0;
  rewriteMs = 0;
  /** --rewrite=stub: jumps onto a rewritten site's `ud2` served as its syscall. */
  stubTraps = 0;
  /** --rewrite=stub: libraries' files by guest path (null: unreadable), shared by the run. */
  codeFiles = new Map<string, { elf: ElfFile; bytes: Uint8Array } | null>();
  /** --rewrite=static: finds a file's syscall sites. */
  sites?: (bytes: Uint8Array, elf: ElfFile) => number[];
  /** `syscall` sites patched before boot (--rewrite=static). */
  rewrittenSites = 0;
  /** --rewrite=static: each library's syscall sites, as file offsets. */
  libSites = new Map<string, number[]>();
  /** Exitless host calls: vCPU 0 on a runner, the main thread polls and serves. */
  exitless = false;
  /** When the exitless loop must next look at timers (host monotonic ns). */
  wakeNs = 0n;
  /** The polling word of the boot information (transport.ts). */
  pollWord?: Int32Array;
  /** The exitless transport's wake eventfd (src/vm/wake.ts), or -1. */
  wakeFd = -1;
  /** Whether the kick's eventfd was made (setup.ts armKick). */
  kickArmed = false;
  /** `--host-calls=auto`: by exit until the program makes calls often, then exitless. */
  adaptive = false;
  /** The transport the run was given or chose (`exitless` and `adaptive` follow it). */
  readonly hostCalls: HostCalls;
  /** --timeout, in seconds. */
  timeout?: number;
  /** The host timer (armHostTimer) is armed. */
  timerArmed = false;
  /** The host POSIX timer, once made. */
  timerId?: number;
  /** A debugger (gdb's stub) that sees this image's exceptions first. */
  debugger?: DebugHook;
  /** The crash that ended the process, if one did. */
  crash?: CrashReport;
  /** When this image was made, and when it started running (performance.now()). */
  t0 = performance.now();
  /** When it started running. */
  tRun = 0;
  /** The run's deadline passed. */
  timedOut = false;
  /** The result, once finished. */
  finished?: RunResult;
  /** The run loop on this thread must give way to the process table's (fork, execve). */
  handoff = false;
  /** vCPU 0 runs on a runner and the process table's loop serves this VM with others. */
  scheduled = false;
  /** vCPU 0 waits for a vfork child before it runs on a runner (see holdForVfork). */
  held = false;
  /** A thread waits for a vfork child (holdForVfork): only SIGKILL ends that wait, and the process. */
  vforkWait = false;
  /** A vfork child running on its parent's machine: what it gives back (loan.ts). */
  loan?: Loan;
  /** The vfork child running on this machine, while it does. */
  lentTo?: Guest;
  /** Whether schedule() has started vCPU 0 (a forked child, a new image). */
  launched = false;
  /** The image execve put in this one's place. */
  replacement?: Guest;
  /** The exitless loop's C server of plain calls, kept between slices of a run (transport.ts). */
  plain?: PlainServer;
  /** Its profile sampler, in a profiled run (BootOptions.profile). */
  sampler?: Sampler;
  /**
   * Set while the host timer has stopped vCPU 0 on the main thread (its
   * timers fire then): its registers may be read and set.
   */
  timerStop = false;
  #disposed = false;

  /**
   * An image of a process of `table`, not yet set up (setup.ts, fork.ts).
   * `like`: an image of the same run (a fork's parent, the image execve
   * replaces), whose registry, platform and transport this one shares
   * rather than works out again (a new default registry alone cost a fork
   * ~0.1 ms).
   */
  constructor(options: BootOptions, table: ProcessTable, like?: Guest) {
    this.options = options;
    this.table = table;
    this.registry = options.registry ?? like?.registry ?? defaultRegistry();
    const stderr = (m: string) => Deno.stderr.writeSync(new TextEncoder().encode(m + "\n"));
    this.diag = options.onDiagnostic ?? stderr;
    this.trace = options.trace === true ? stderr : options.trace || undefined;
    this.timeout = options.timeout;
    const platform = options.platform ?? like?.stats.platform ?? detectPlatform();
    // Measured once per process, before the first boot (Vm.create).
    const measured = knownHostProfile(platform);
    this.rewriteMode = like?.rewriteMode ??
      resolveRewrite(options.rewrite, platform, measured).mode;
    this.rewrite = this.rewriteMode === "lazy" || this.rewriteMode === "static";
    this.lazy = this.rewriteMode === "lazy";
    this.stubs = this.rewriteMode === "stub";
    const hostCalls = options.hostCalls ?? like?.hostCalls ??
      defaultHostCalls(platform, undefined, measured);
    this.hostCalls = hostCalls;
    this.exitless = hostCalls === "exitless";
    this.adaptive = hostCalls === "auto";
    this.stats = {
      platform,
      bootMs: 0,
      runMs: 0,
      exits: 0,
      hostCalls: 0,
      exitless: 0,
      plainCalls: 0,
      syscalls: {},
      syscallMs: {},
      loadMs: 0,
      kvm: {},
    };
  }

  /**
   * execve succeeded: this image ends (quietly) and `next` goes on as the process.
   * @internal
   */
  replaceWith(next: Guest): void {
    this.replacement = next;
    this.handoff = true;
    this.process!.exit(0);
  }

  /** A trace line; with the thread's id once the process has more than one, as `strace -f`. */
  traced(cpu: Cpu | undefined, line: string): void {
    const t = this.threads;
    const several = this.table.multi || (t !== undefined && t.count > 1);
    this.trace!(several ? `[pid ${cpu?.tid ?? this.pid}] ${line}` : line);
  }

  /** Writes a syscall result into `cpu`'s host-call block. */
  setRet(cpu: Cpu, ret: bigint): void {
    const at = physOf(this.mem!, cpu.id, ABI.HOSTCALL_ADDR + HOSTCALL.ret);
    this.mem!.view.setBigInt64(at, BigInt.asIntN(64, ret), true);
  }

  /** The host's view of thread `tid`'s `struct percpu` field, if it lives. */
  percpuOf(tid: number, field: number): number | undefined {
    // Before the threads exist there is vCPU 0 only.
    if (!this.threads) return ABI.PERCPU_ADDR + field;
    const cpu = this.threads.cpus.find((c) => c.alive && c.tid === tid);
    return cpu ? physOf(this.mem!, cpu.id, ABI.PERCPU_ADDR + field) : undefined;
  }

  /**
   * Gets a signal to thread `tid`, which is not the one being served: vCPU
   * 0 through the host timer (as an async signal); a parked thread's wait
   * ends with EINTR; a running one is kicked out of KVM_RUN. A thread that
   * waits to be served acts on it after its call.
   */
  notifyThread(tid: number): void {
    const t = this.threads!, cpu = t.cpus.find((c) => c.alive && c.tid === tid);
    if (!cpu) return;
    if (!cpu.runner) {
      this.sig.retryAt = monotonicNs() + 1000n;
      this.sig.armHost(undefined, true);
      return;
    }
    t.interrupt(cpu);
  }

  /** Whether `cpu`'s thread has a signal to act on (pending and not blocked). */
  signalled(cpu: Cpu): boolean {
    let due = false;
    this.asThread(cpu, () => due = this.sig.next() !== 0);
    return due;
  }

  /** Runs `f` with `cpu`'s vCPU as the one the delivery paths act on. */
  asThread(cpu: Cpu, f: () => void): void {
    const t = this.threads!, outer = t.serving;
    const [vcpu, view] = [this.vcpu, this.runView];
    t.serving = cpu;
    this.vcpu = cpu.vcpu;
    this.runView = cpu.runView;
    try {
      f();
    } finally {
      t.serving = outer;
      this.vcpu = vcpu;
      this.runView = view;
    }
  }

  /** The main thread waits until host monotonic `until`, serving other threads. */
  idle(until: bigint): void {
    const threads = this.threads!;
    const left = until - monotonicNs();
    if (left <= 0n) {
      // A parked thread's deadline (what `until` may be) fires here.
      if (threads.cpus.length > 1) threads.serveWorkers();
      return;
    }
    if (threads.cpus.length === 1) {
      const ts = new BigInt64Array([until / 1_000_000_000n, until % 1_000_000_000n]);
      hostSyscall(
        NR_CLOCK_NANOSLEEP,
        CLOCK_MONOTONIC,
        1,
        bufferAddress(new Uint8Array(ts.buffer)),
        0,
      );
      return;
    }
    threads.idle(Math.min(Number(left / 1_000_000n) + 1, 50));
  }

  /**
   * Starts the clock of this image's run; the run ends with a SIGKILL at `deadline`.
   * @internal
   */
  begin(deadline?: bigint): void {
    this.tRun = performance.now();
    this.stats.bootMs = this.tRun - this.t0;
    if (this.sampler) this.sig.armHost(undefined, true); // its first tick
    if (deadline !== undefined) {
      this.sig.runDeadline = deadline;
      this.sig.armHost();
    }
  }

  /** Whether the process has ended (exit, a fatal signal, execve), and how. */
  get ended(): { code: number; signal?: number } | undefined {
    return this.process?.ended;
  }

  /**
   * Runs the process on this thread (vCPU 0 here with the doorbell, or the
   * exitless loop) until it ends or must hand over to the process table
   * (a fork, an execve).
   * @internal
   */
  runSolo(): void {
    const vcpu = this.vcpu!, view = this.runView!, p = this.process!, sig = this.sig;
    const threads = this.threads!, main = threads.main;
    if (this.exitless) return runExitless(this);
    while (!p.ended && !this.handoff && !this.table.yieldDue()) {
      if (!main.alive) {
        // The first thread has exited; the others go on.
        this.idle(threads.nextDeadline() ?? monotonicNs() + 50_000_000n);
        sig.fireTimers();
      } else {
        const ran = runOnce(this, vcpu);
        if (ran === false) {
          view.setUint8(LAYOUTS.kvm_run.fields.immediate_exit, 0);
          this.onTimer();
        } else {
          const crash = ran === true ? onExit(this, view) : ran;
          if (crash) {
            this.crash = crash;
            p.exit(0, crash.signal);
          }
        }
      }
      if (threads.cpus.length > 1 && !p.ended) {
        threads.pollWatched(); // a call just served may have made a parked wait's fd ready
        threads.serveWorkers();
        sig.armHost();
      }
      if (
        this.adaptive && this.stats.hostCalls >= AUTO_EXITLESS_CALLS && main.alive && !p.ended &&
        !this.handoff && !this.scheduled
      ) {
        this.#goExitless();
        return runExitless(this);
      }
      this.checkTimeout();
    }
  }

  /**
   * An `auto` run that makes calls often goes exitless: vCPU 0 moves to a
   * runner of its own (as for the process table), the host timer gives way
   * to the poller's clock, and the route table lets calls be posted.
   */
  #goExitless(): void {
    const threads = this.threads!;
    this.adaptive = false;
    this.armHostTimer(undefined);
    this.exitless = true;
    writeRoutes(this, this.mem!);
    if (threads.mainRuns) {
      const xsave = new Uint8Array(LAYOUTS.kvm_xsave.size);
      this.vcpu!.getXsave(xsave);
      this.runView!.setUint8(LAYOUTS.kvm_run.fields.immediate_exit, 0);
      threads.moveMainToRunner(xsave);
    }
    this.sig.armHost(undefined, true);
  }

  checkTimeout(): void {
    const p = this.process!;
    if (this.sig.timedOut && !p.ended) {
      this.timedOut = true;
      p.exit(0, SIG.SIGKILL);
    }
  }

  /**
   * A fork or execve: the loop on this thread gives way to the process table's.
   * @internal
   */
  handOff(): void {
    if (!this.scheduled) this.handoff = true;
  }

  /**
   * From now on the process table's loop serves this VM among others:
   * vCPU 0 gets a runner of its own (if the main thread ran it), host calls
   * come by the doorbell, timers are looked at by the table's loop, and
   * every runner writes the table's `wakeFd` at each exit.
   * @internal
   */
  schedule(wakeFd: number): void {
    const threads = this.threads!;
    this.sig.stops = true; // job control: the table can stop serving it now
    if (!this.scheduled) {
      this.armHostTimer(undefined);
      this.scheduled = true;
      this.handoff = false;
      // vCPU 0 runs already, or starts here (or at a vfork's release): a
      // later schedule() (each slice of a sliced run) must not start it
      // again. Doing so set RUN over a runner waiting to be served, whose
      // exit was then lost: a doorbell call returned the last call's result.
      this.launched = true;
      if (threads.mainRuns) {
        const xsave = new Uint8Array(LAYOUTS.kvm_xsave.size);
        this.vcpu!.getXsave(xsave);
        this.runView!.setUint8(LAYOUTS.kvm_run.fields.immediate_exit, 0);
        threads.useWakeFd(wakeFd);
        threads.moveMainToRunner(xsave);
        if (threads.main.alive && !this.process!.ended && !this.held) threads.startMain();
      } else {
        threads.useWakeFd(wakeFd);
        setPolling(this, false);
        pollHostCalls(this);
      }
      this.sig.armHost(undefined, true);
      return;
    }
    threads.useWakeFd(wakeFd);
    // A new image or a forked child starts once; a running one is left alone.
    if (this.launched) return;
    this.launched = true;
    if (threads.main.alive && !this.process!.ended) threads.startMain();
  }

  /**
   * One round of the process table's loop for this VM: serves its runners'
   * exits (and requests posted exitless), parked deadlines and timers;
   * returns how many calls it served.
   * @internal
   */
  step(): number {
    const p = this.process!, threads = this.threads!;
    if (p.ended) return 0;
    let n = 0;
    if (this.exitless) {
      // Plain calls in C (one look: the loop serves other processes too), the rest here.
      const fast = (this.plain ??= new PlainServer(this, 0)).serve(threads.door);
      n += fast.served;
      if (fast.back) n += pollHostCalls(this);
    }
    threads.pollWatched();
    n += threads.serveWorkers();
    if (!p.ended) exitlessTimers(this);
    this.checkTimeout();
    return n;
  }

  /**
   * When {@linkcode step} must run again though no runner exits (host monotonic ns).
   * @internal
   */
  wakeAt(): bigint | undefined {
    return exitlessWake(this);
  }

  /**
   * Adds the vCPUs whose parked waits watch fds to `out`.
   * @internal
   */
  watching(out: Cpu[]): void {
    for (const c of this.threads!.cpus) if (c.parked?.watch?.length) out.push(c);
  }

  /**
   * A signal from another process (kill): raised for the process, and a
   * thread that does not block it is interrupted to act on it.
   * @internal
   */
  raise(info: SigInfo): void {
    const p = this.process!;
    if (p.ended) return;
    // A stop signal cancels a pending SIGCONT, and SIGCONT pending stops.
    if (info.signo === SIGNO.SIGCONT) { for (const n of STOPS) this.sig.discard(n); }
    else if (STOPS.includes(info.signo)) this.sig.discard(SIGNO.SIGCONT);
    this.sig.raise(info);
    if (info.signo === SIGNO.SIGKILL && this.vforkWait) {
      // As Linux's killable vfork wait: the process ends; its child goes on.
      p.exit(0, SIGNO.SIGKILL);
      return;
    }
    const threads = this.threads!;
    for (const c of threads.cpus) {
      if (!c.alive || !c.runner || c.busy) continue;
      if (this.signalled(c)) {
        threads.interrupt(c);
        return;
      }
    }
  }

  /**
   * Job control: every running vCPU is kicked out of KVM_RUN; its exit
   * waits, unserved, while the process table does not step this process.
   * @internal
   */
  halt(): void {
    const threads = this.threads!;
    for (const c of threads.cpus) {
      if (c.alive && c.runner && !c.busy && !c.parked) threads.interrupt(c);
    }
  }

  /**
   * The process's parent is now `ppid` (its own ended: getppid sees the first process).
   * @internal
   */
  setParent(ppid: number): void {
    this.ppid = ppid;
    const at = ABI.BOOT_INFO_ADDR + BOOT_INFO.ppid;
    if (this.mem) this.mem.view.setBigUint64(at, BigInt(ppid), true);
  }

  /**
   * Ends this image's run: stops its threads, writes back shared file
   * mappings, and (unless `quiet`: a replaced image, or a process killed
   * with the run) reports a crash or a timeout. The run's result.
   * @internal
   */
  finish(quiet = false): RunResult {
    if (this.finished) return this.finished;
    const p = this.process!, threads = this.threads!;
    threads.stopAll();
    this.armHostTimer(undefined);
    const crash = this.crash;
    if (this.sig.timedOut && p.ended?.signal === SIG.SIGKILL) this.timedOut = true;
    this.stats.runMs = performance.now() - this.tRun;
    this.stats.kvm = this.machine!.counters(threads.cpus.map((c) => c.vcpu));
    this.stats.rewrite = rewriteStats(this);
    if (crash && !quiet) this.diag(formatCrash(crash));
    if (this.timedOut && !quiet) {
      this.diag(`hermitux: timed out after ${this.timeout} s; guest stopped`);
    }
    const end = p.ended ?? { code: 0, signal: SIG.SIGKILL };
    return this.finished = {
      status: end.signal ? 128 + end.signal : end.code,
      exitCode: end.signal ? undefined : end.code,
      signal: end.signal,
      crash,
      timedOut: this.timedOut,
      stats: this.stats,
      processes: 1,
      perProcess: [],
    };
  }

  /**
   * One host timer drives the run's deadline and the guest's timers: a POSIX
   * timer whose SIGALRM goes to this thread (SIGEV_THREAD_ID), so it
   * interrupts a blocked KVM_RUN (EINTR) even when the process has other
   * threads (a test runner, Deno's workers). Armed for `ns` from now, then
   * repeating every few ms until re-armed, in case a SIGALRM arrived while
   * this thread was not in KVM_RUN; undefined disarms it.
   */
  armHostTimer(ns: bigint | undefined): void {
    if (this.exitless || this.scheduled) {
      // No KVM_RUN on this thread to interrupt: the run loop waits for it.
      this.wakeNs = ns === undefined ? 0n : monotonicNs() + ns;
      return;
    }
    if (ns === undefined && !this.timerArmed) return;
    ignoreAlarms();
    if (this.timerId === undefined) {
      const sev = new Uint8Array(64), id = new Int32Array(1);
      const sv = new DataView(sev.buffer);
      sv.setInt32(8, SIGALRM_HOST, true);
      sv.setInt32(12, SIGEV_THREAD_ID, true);
      sv.setInt32(16, Number(hostSyscall(NR_GETTID)), true);
      const r = hostSyscall(
        NR_TIMER_CREATE,
        CLOCK_MONOTONIC,
        bufferAddress(sev),
        bufferAddress(new Uint8Array(id.buffer)),
      );
      if (r < 0n) throw new OsError("timer_create", Number(-r));
      this.timerId = id[0];
    }
    this.timerArmed = ns !== undefined;
    const t = new BigInt64Array(4); // it_interval, it_value
    if (ns !== undefined) t.set([0n, TIMER_REPEAT_NS, ns / 1_000_000_000n, ns % 1_000_000_000n]);
    hostSyscall(NR_TIMER_SETTIME, this.timerId, 0, bufferAddress(new Uint8Array(t.buffer)), 0);
  }

  /** KVM_RUN was interrupted by the host timer: expire timers, deliver what is due. */
  onTimer(): void {
    const sig = this.sig, now = monotonicNs();
    sig.retryAt = 0n;
    this.timerStop = true;
    sig.fireTimers(now);
    this.timerStop = false;
    if (sig.timedOut) return;
    if (sig.next()) deliverAsync(this);
    sig.armHost(now, true);
  }

  /** Names this process's profile samples and adds them to the run's profile (once each). */
  flushProfile(): void {
    try {
      this.sampler?.flush();
    } catch (e) {
      this.diag(`hermitux: profile: samples of pid ${this.pid} lost: ${(e as Error).message}`);
    }
  }

  /**
   * Frees the threads, the fds, the mounts and the machine (its RAM kept,
   * cleared, for the next VM: {@linkcode GuestMemory.release}). Safe to call twice.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.timerId !== undefined) hostSyscall(NR_TIMER_DELETE, this.timerId);
    this.threads?.stopAll();
    this.flushProfile();
    if (this.stubs) saveSiteShapes(); // what the rewriter learned, for the next run
    // A runner still running (stuck past stopAll's wait) may write it yet.
    const done = this.threads?.runnersDone() ?? true;
    if (done) closeEventfd(this.wakeFd);
    this.threads?.dispose();
    this.plain?.dispose();
    this.plain = undefined;
    this.process?.fds.closeAll();
    this.mounts?.close();
    if (settleLoan(this, done)) return;
    const m = this.machine, cpus = this.threads?.cpus ?? [];
    // One vCPU, no ioeventfd, every runner gone: another process of the run may have it.
    if (m && done && this.scheduled && cpus.length <= 1 && this.wakeFd < 0) {
      this.table.machines.give(m);
    } else if (
      !(m && done && cpus.length <= 1 && this.wakeFd < 0 && this.#cleanEnd() && keepMachine(m))
    ) {
      m?.dispose(done, cpus.slice(1).map((c) => c.vcpu));
    }
  }

  /**
   * Whether this image ran to an exit of its own at CPL 3, so that its
   * machine may serve the process's next boot (keepMachine): nothing it
   * could do reaches past what a new guest's set-up writes again.
   */
  #cleanEnd(): boolean {
    return this.finished !== undefined && !this.crash && !this.timedOut &&
      !this.replacement && guestCpl(this.stats.platform) === 3;
  }

  /** Same as {@linkcode Guest.dispose}. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
