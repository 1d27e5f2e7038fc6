/**
 * A hermitux VM: configuration → machine (KVM VM, memory, vCPU, kernel,
 * program, stack) → run loop. Data flows one way; {@linkcode Vm.run}
 * returns how the guest ended.
 * @module
 */
import { ABI, BOOT_INFO, BOOT_MAGIC, HOSTCALL, PERCPU, REGION } from "../kernel/abi.ts";
import { type KernelImage, kernelImage } from "../kernel/image.ts";
import { GUEST_FORWARDS } from "../kernel/local.ts";
import { addKvmStats } from "../kvm/stats.ts";
import { closeEventfd, makeEventfd } from "./wake.ts";
import { CAP, EXIT, Kvm, type VcpuFd, type VmFd } from "../kvm/ioctls.ts";
import { libc, OsError, strerror } from "../kvm/libc.ts";
import { bufferAddress, hostSyscall } from "../syscalls/host.ts";
import { detectPlatform, guestCpl } from "../kvm/platform.ts";
import { LAYOUTS, regOffset } from "../kvm/structs.ts";
import { ElfError, type ElfFile, parseElf, PT_LOAD } from "../loader/elf.ts";
import { loadExecutable, loadInterpreter } from "../loader/load.ts";
import { mapFile } from "../loader/mapfile.ts";
import { buildPageTables, mapTrampoline } from "../loader/paging.ts";
import { AT, buildStack } from "../loader/stack.ts";
import { dispatch, type Process, type SyscallRegistry } from "../syscalls/registry.ts";
import { defaultRegistry, flushSharedMappings } from "../syscalls/mod.ts";
import { fileMappings, onExecMapping, onPastEnd } from "../syscalls/mm.ts";
import { FdTable, OpenFile } from "../syscalls/fdtable.ts";
import { MountTable } from "../vfs/mounts.ts";
import { E, SyscallError } from "../syscalls/errno.ts";
import { ERESTARTSYS } from "../syscalls/stdio.ts";
import { formatSyscall } from "../syscalls/trace.ts";
import { SYSCALL_NUMBERS, syscallName } from "../syscalls/table.ts";
import { cpuFeatures, setupVcpu, writeSystemTables } from "./cpu.ts";
import {
  crashFromException,
  type CrashReport,
  formatCrash,
  formatSignal,
  HAS_ERROR_CODE,
  type LoadedObject,
  SIG,
  symbolize,
  type Symbolizer,
  vectorSignal,
} from "./fault.ts";
import { GuestMemory } from "./memory.ts";
import {
  adoptCpuPages,
  AREA_SIZE as PERCPU_AREA,
  buildCpuTables,
  pdCopyOf,
  physOf,
} from "./percpu.ts";
import { ProcessTable } from "../process/table.ts";
import { attachProcesses } from "../syscalls/procs.ts";
import { accessOf, PageProtections } from "./protect.ts";
import { type Cpu, Threads, type ThreadVm } from "./threads.ts";
import { CTL } from "./wire.ts";
import { attachThreads, CLONE, type CloneSpec, WouldBlock } from "../syscalls/thread.ts";
import { defaultHostCalls, DOORBELL_ONLY, POLL_WINDOW_MS } from "./exitless.ts";
import {
  attachSignals,
  bit,
  monotonicNs,
  SA,
  SI,
  SIG_DFL,
  SIG_IGN,
  type SigInfo,
  SignalState,
  SS,
} from "../syscalls/signal.ts";
import { initXsave, popFrame, pushFrame, R, savedRflags, type UserContext } from "./sigframe.ts";
import type { BootOptions, RunResult, RunStats } from "./options.ts";
import { hostAuxv, hostUtsname, ignoreAlarms } from "./hostinfo.ts";
import {
  fileAt,
  type GuestRegion,
  guestRegions,
  type MappedObject,
  procMaps,
  readExecutable,
  readGuestElf,
  readInterpreter,
  readProgram,
  shebang,
} from "./program.ts";

export type { BootOptions, RunResult, RunStats } from "./options.ts";

/**
 * 1 GiB. RAM is also the address space a program may reserve (guest
 * virtual addresses are guest-physical ones), and `--mem 2G` gives more
 * (node's second isolate needs another 128 MiB code range), but small
 * programs start slower with it: a dynamic C hello took 12–20 ms instead
 * of 9–10 in `bench:startup` (python3 the same), likely KVM's per-memslot
 * arrays, which grow with RAM.
 */
const DEFAULT_MEMORY = 1024 * 1024 * 1024;
const STACK_SIZE = 8 * 1024 * 1024;
const FORWARDED = new Set(GUEST_FORWARDS.map((n) => SYSCALL_NUMBERS.get(n)!));
const SYNC_X86_REGS = 1n;
const SIGALRM_HOST = 14, SIGEV_THREAD_ID = 4, CLOCK_MONOTONIC = 1;
const MSR_FS_BASE = 0xc0000100, MSR_GS_BASE = 0xc0000101;
const NR_CLOCK_NANOSLEEP = 230;
const NR_GETTID = 186,
  NR_TIMER_CREATE = 222,
  NR_TIMER_SETTIME = 223,
  NR_TIMER_DELETE = 226;
/** The registers syscall_entry saves (struct frame in kernel.h), in memory order. */
const SYSCALL_FRAME = [
  R.r15,
  R.r14,
  R.r13,
  R.r12,
  R.rbp,
  R.rbx,
  R.r11,
  R.r10,
  R.r9,
  R.r8,
  R.rcx,
  R.rdx,
  R.rsi,
  R.rdi,
  R.rax,
  R.rsp,
]; // deno-fmt-ignore
const SYSCALL_FRAME_ADDR = ABI.KSTACK_TOP - SYSCALL_FRAME.length * 8;
const NR_SCHED_YIELD = 24;
const NR_RT_SIGRETURN = 15;

/** Room for 4 KiB page tables split from 2 MiB pages: one per 2 MiB of RAM (at least 2 MiB). */
const ptPool = (size: number) => Math.max(0x200000, Math.ceil(size / 512 / 0x200000) * 0x200000);
const HUGE_PAGE = 0x200000;
/** rflags.TF: single-stepping. */
const TF = 0x100n;
/** How soon to retry delivering an async signal that found the vCPU in the guest kernel. */
const RETRY_NS = 1_000_000n;
/** After a first expiry, the host timer repeats this often until re-armed (a missed SIGALRM). */
const TIMER_REPEAT_NS = 5_000_000n;

// Facts about the host that do not change while the process lives.
let features: ReturnType<typeof cpuFeatures> | undefined;
class GuestProcess implements Process {
  fds = new FdTable();
  readonly state = new Map<string, unknown>();
  ended?: { code: number; signal?: number };
  constructor(
    readonly mem: GuestMemory,
    readonly pid: number,
    readonly argv: readonly string[],
    readonly exePath: string,
    readonly mounts: MountTable,
    public cwd: string,
    readonly mappings: () => string,
  ) {}
  exit(code: number, signal?: number): void {
    this.ended ??= { code, signal };
  }
}

/**
 * What a new image of a process (execve) takes over from the old one, or a
 * forked child from its parent.
 */
interface ProcessInit {
  pid: number;
  ppid: number;
  fds: FdTable;
  mounts: MountTable;
  cwd: string;
  argv: string[];
  envp: string[];
  /** Signals the old image ignored: they stay ignored. */
  ignored: number[];
  /** The blocked mask of the thread that called execve. */
  mask: bigint;
  /** Per-process values the image keeps (limits, umask, capabilities). */
  state: [string, unknown][];
  /** Whether the main thread serves several processes (vCPU 0 on a runner). */
  scheduled: boolean;
}

/** Per-process values an image keeps across execve and a child gets from fork. */
const INHERITED = ["rlimits", "umask", "caps"];

/** A booted (not yet running) guest. Dispose it to free every fd and mapping. */
export class Vm implements Disposable, AsyncDisposable {
  #kvm: Kvm;
  #vm?: VmFd;
  #vcpu?: VcpuFd;
  #run?: Deno.PointerObject;
  #runSize = 0;
  #runView?: DataView;
  #mem?: GuestMemory;
  #elf!: ElfFile;
  #base = 0;
  #process?: GuestProcess;
  #mounts?: MountTable;
  #registry: SyscallRegistry;
  #trace?: (line: string) => void;
  #diag: (message: string) => void;
  #warned = new Set<number>();
  #timeout?: number;
  #sig!: SignalState;
  #timerArmed = false;
  #timerId?: number;
  #xsave = new Uint8Array(LAYOUTS.kvm_xsave.size);
  /** KVM copies the registers to kvm_run at every exit (KVM_CAP_SYNC_REGS). */
  #syncRegs = false;
  /** Protections in the page tables (HC_PROT). */
  #prot?: PageProtections;
  /** The end of the address range the guest may map (mmap_max). */
  #userEnd = 0;
  #protWarned = false;
  #initXsave = initXsave();
  #t0 = performance.now();
  #stats: RunStats;
  #disposed = false;
  #rewrite = false;
  #lazy = false;
  /** Exitless host calls: vCPU 0 on a runner, the main thread polls and serves. */
  #exitless = false;
  /** When the exitless loop must next look at timers (host monotonic ns). */
  #wakeNs = 0n;
  #pollWord?: Int32Array;
  #sites?: (bytes: Uint8Array, elf: ElfFile) => number[];
  /** `syscall` sites patched before boot (--rewrite=static). */
  rewrittenSites = 0;
  /** --rewrite=static: each library's syscall sites, as file offsets. */
  #libSites = new Map<string, number[]>();
  #threads?: Threads;
  #cr3 = 0n;
  #kernel?: KernelImage;
  #runs: Deno.PointerObject[] = [];
  /** The program and its interpreter, as loaded. */
  #objects: MappedObject[] = [];
  /** The exitless transport's wake eventfd (src/vm/wake.ts), or -1. */
  #wakeFd = -1;
  #crash?: CrashReport;
  /** The VM fd's close on a worker thread (dispose), under way or done. */
  #teardown?: Promise<void>;
  #options: BootOptions;
  /** Every process of the run (fork, execve, wait, kill go through it). */
  #table: ProcessTable;
  #pid = 0;
  #ppid = 0;
  /** The run loop on this thread must give way to the process table's (fork, execve). */
  #handoff = false;
  /** vCPU 0 runs on a runner and the process table's loop serves this VM with others. */
  #scheduled = false;
  #stackTop = 0;
  /** vCPU 0 waits for a vfork child before it runs on a runner (see holdForVfork). */
  #held = false;
  /** Whether schedule() has started vCPU 0 (a forked child, a new image). */
  #launched = false;
  #tRun = 0;
  #timedOut = false;
  #finished?: RunResult;
  /**
   * The image execve put in this one's place.
   * @internal
   */
  replacement?: Vm;

  private constructor(options: BootOptions, table: ProcessTable) {
    this.#options = options;
    this.#table = table;
    this.#registry = options.registry ?? defaultRegistry();
    const stderr = (m: string) => Deno.stderr.writeSync(new TextEncoder().encode(m + "\n"));
    this.#diag = options.onDiagnostic ?? stderr;
    this.#trace = options.trace === true ? stderr : options.trace || undefined;
    this.#timeout = options.timeout;
    this.#rewrite = options.rewrite === "lazy" || options.rewrite === "static";
    this.#lazy = options.rewrite === "lazy";
    const platform = options.platform ?? detectPlatform();
    this.#exitless = (options.hostCalls ?? defaultHostCalls(platform)) === "exitless";
    this.#stats = {
      platform,
      bootMs: 0,
      runMs: 0,
      exits: 0,
      hostCalls: 0,
      exitless: 0,
      syscalls: {},
      syscallMs: {},
      loadMs: 0,
      kvm: {},
    };
    this.#kvm = new Kvm(options.kvmDevice);
  }

  /** Creates the VM and loads the program; throws a clear error on bad input. */
  static async create(options: BootOptions): Promise<Vm> {
    const kernel = await kernelImage();
    let bytes = readProgram(options.path);
    for (let depth = 0; bytes[0] === 0x23 && bytes[1] === 0x21; depth++) {
      if (depth === 4) throw new ElfError(`${options.path}: too many levels of #! interpreters`);
      options = shebang(options, bytes);
      bytes = readProgram(options.path);
    }
    const elf = parseElf(bytes, options.path);
    const table = new ProcessTable(Deno.pid, options.maxProcesses);
    const vm = new Vm(options, table);
    if (options.rewrite === "static") {
      vm.#sites = (await import("../analysis/sites.ts")).syscallSites;
    }
    try {
      vm.#setup(options, elf, bytes, kernel);
    } catch (e) {
      vm.dispose();
      throw e;
    }
    attachProcesses(vm.#process!, table.hostFor(table.addRoot(vm, Deno.ppid)));
    return vm;
  }

  /**
   * execve's new image of this VM's process: `path` found through the
   * mounts (a `#!` script runs its interpreter), its own VM set up with
   * `argv` and `envp`, the fds not marked close-on-exec, the cwd, ignored
   * signals and the caller's mask. Throws SyscallError with execve's errno
   * when it cannot be (the caller goes on); nothing of this VM changes.
   * @internal
   */
  execImage(path: string, argv: string[], envp: string[], scheduled: boolean): Vm {
    const p = this.#process!, mounts = this.#mounts!;
    let { bytes, guestPath } = readExecutable(mounts, path, p.cwd);
    let options: BootOptions = { ...this.#options, path, args: argv.slice(1), argv0: undefined };
    for (let depth = 0; bytes[0] === 0x23 && bytes[1] === 0x21; depth++) {
      if (depth === 4) throw new SyscallError(E.ELOOP);
      try {
        options = shebang(options, bytes);
      } catch {
        throw new SyscallError(E.ENOEXEC);
      }
      ({ bytes, guestPath } = readExecutable(mounts, options.path, p.cwd));
    }
    const script = options.path !== path;
    let elf: ElfFile;
    try {
      elf = parseElf(bytes, guestPath);
    } catch (e) {
      if (e instanceof ElfError) throw new SyscallError(E.ENOEXEC);
      throw e;
    }
    const s = this.#sig;
    const ignored: number[] = [];
    for (let n = 1; n <= 64; n++) if (s.action(n).handler === SIG_IGN) ignored.push(n);
    const init: ProcessInit = {
      pid: this.#pid,
      ppid: this.#ppid,
      fds: p.fds.copy(true),
      mounts: mounts.share(),
      cwd: p.cwd,
      argv: script ? [options.argv0!, ...options.args!] : argv,
      envp,
      ignored,
      mask: s.mask,
      state: INHERITED.filter((k) => p.state.has(k)).map((k) => [k, p.state.get(k)]),
      scheduled,
    };
    const vm = new Vm({ ...options, path: guestPath }, this.#table);
    vm.#sites = this.#sites;
    vm.#libSites = this.#libSites;
    vm.#warned = this.#warned; // an unsupported syscall is named once per run
    try {
      vm.#setup(vm.#options, elf, bytes, this.#kernel!, init);
    } catch (e) {
      vm.dispose();
      if (e instanceof ElfError) throw new SyscallError(E.ENOEXEC);
      if (e instanceof OsError) throw new SyscallError(E.ENOMEM);
      throw e;
    }
    attachProcesses(vm.#process!, this.#table.hostFor(this.#table.get(this.#pid)!));
    return vm;
  }

  /**
   * execve succeeded: this image ends (quietly) and `next` goes on as the process.
   * @internal
   */
  replaceWith(next: Vm): void {
    this.replacement = next;
    this.#handoff = true;
    this.#process!.exit(0);
  }

  #setup(
    options: BootOptions,
    elf: ElfFile,
    bytes: Uint8Array,
    kernel: Awaited<ReturnType<typeof kernelImage>>,
    init?: ProcessInit,
  ): void {
    const size = options.memory ?? DEFAULT_MEMORY;
    this.#kernel = kernel;
    const pid = this.#pid = init?.pid ?? this.#table.rootPid;
    this.#ppid = init?.ppid ?? Deno.ppid;
    if (init?.scheduled) {
      this.#exitless = false;
      this.#scheduled = true;
    }
    this.#elf = elf;
    const mem = this.#machine(size);
    const stackTop = this.#stackTop;
    const poolEnd = size - PERCPU_AREA;
    mem.bytes.set(kernel.bytes, ABI.KERNEL_ADDR);
    this.#mounts = init?.mounts ?? new MountTable(options.mounts ?? []);
    mem.userEnd = stackTop;
    let mmapMax = stackTop - STACK_SIZE;
    const image = loadExecutable(elf, bytes, mem, mmapMax);
    this.#base = image.base;
    const objects: MappedObject[] = this.#objects = [
      { elf, base: image.base, path: options.path },
    ];
    let interpBase = 0, entry = image.entry;
    let interpObj: { elf: ElfFile; bytes: Uint8Array } | undefined;
    if (elf.interpreter !== undefined) {
      // execve of a program whose interpreter is missing: ENOENT, the caller goes on.
      const interp = init
        ? readGuestElf(this.#mounts, elf.interpreter, init.cwd)
        : readInterpreter(this.#mounts, elf.interpreter, options.cwd ?? "/", elf.path);
      interpObj = interp;
      const placed = loadInterpreter(interp.elf, interp.bytes, mem, image.brkStart, mmapMax);
      interpBase = placed.base;
      entry = placed.entry;
      // One guard page, then the mmap area grows down from below the loader.
      mmapMax = placed.start - ABI.PAGE_SIZE;
      objects.push({ elf: interp.elf, base: placed.base, path: interp.guestPath });
    }
    if (this.#sites) {
      this.#patchSites(mem, bytes, elf, image.base);
      if (interpObj) this.#patchSites(mem, interpObj.bytes, interpObj.elf, interpBase);
    }
    this.#stats.loadMs = performance.now() - this.#t0;

    const argv = init?.argv ?? [options.argv0 ?? options.path, ...(options.args ?? [])];
    const env = init?.envp ?? Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`);
    features ??= cpuFeatures(this.#kvm, this.#stats.platform);
    const uid = Deno.uid() ?? 0, gid = Deno.gid() ?? 0;
    const sp = buildStack(mem.bytes, stackTop, {
      argv,
      envp: env,
      execfn: options.path,
      random: crypto.getRandomValues(new Uint8Array(16)),
      auxv: [
        [AT.PHDR, image.phdr],
        [AT.PHENT, elf.phentsize],
        [AT.PHNUM, elf.phnum],
        [AT.PAGESZ, ABI.PAGE_SIZE],
        [AT.BASE, interpBase],
        [AT.FLAGS, 0],
        [AT.ENTRY, image.entry],
        [AT.UID, uid],
        [AT.EUID, uid],
        [AT.GID, gid],
        [AT.EGID, gid],
        [AT.HWCAP, hostAuxv().get(AT.HWCAP) ?? features.hwcap],
        [AT.HWCAP2, hostAuxv().get(AT.HWCAP2) ?? 2], // HWCAP2_FSGSBASE
        ...(hostAuxv().has(AT.MINSIGSTKSZ)
          ? [[AT.MINSIGSTKSZ, hostAuxv().get(AT.MINSIGSTKSZ)!] as const]
          : []),
        [AT.CLKTCK, 100],
        [AT.SECURE, 0],
      ],
    });

    this.#makeProcess(mem, argv, options.path, init?.cwd ?? options.cwd ?? "/");
    const proc = this.#process!, vcpu = this.#vcpu!;
    if (this.#sites) onExecMapping(proc, (...a) => this.#patchMapping(...a));
    if (init) {
      proc.fds = init.fds;
      for (const [k, v] of init.state) proc.state.set(k, v);
      for (const n of init.ignored) {
        this.#sig.setAction(n, { handler: SIG_IGN, flags: 0n, restorer: 0n, mask: 0n });
      }
      mem.view.setBigUint64(ABI.PERCPU_ADDR + PERCPU.sigmask, init.mask, true);
    } else {
      const stdio = options.stdio ?? [0, 1, 2];
      const fds = proc.fds;
      stdio.forEach((hostFd, fd) => fds.set(fd, new OpenFile(hostFd, { owned: false })));
    }

    this.#writeBootInfo(mem, {
      entry,
      sp,
      brk: image.brkStart,
      mmapMax,
      tscKhz: vcpu.tscKhz(),
      uid,
      gid,
    });
    const codeEnd = ABI.KERNEL_ADDR +
      Math.ceil(kernel.bytes.length / ABI.PAGE_SIZE) * ABI.PAGE_SIZE;
    const cr3 = this.#cr3 = buildPageTables(mem, codeEnd);
    this.#prot = new PageProtections(
      mem,
      cr3,
      [stackTop, poolEnd],
      () => this.#threads?.cpus.filter((c) => c.id > 0).map((c) => pdCopyOf(mem, c.id)) ?? [],
    );
    this.#userEnd = mmapMax;
    onPastEnd(proc, (start, end) => this.#pastEnd(start, end));
    if (this.#rewrite) mapTrampoline(mem, kernel.zpolineEntry);
    writeSystemTables(mem, kernel);
    setupVcpu(vcpu, 0, cr3, kernel, features, guestCpl(this.#stats.platform));
    this.#kernel = kernel;
    mem.view.setBigUint64(ABI.PERCPU_ADDR + PERCPU.tid, BigInt(pid), true);
    const main: Cpu = {
      id: 0,
      vcpu,
      runAddr: Deno.UnsafePointer.value(this.#run!),
      runView: this.#runView!,
      tid: pid,
      alive: true,
    };
    ignoreAlarms();
    if (this.#exitless) {
      // Guests wake a sleeping poller with a store KVM turns into an eventfd
      // write: no exit (one costs ~100 µs on kvm_pvm, the kick ~30 µs).
      const fd = makeEventfd();
      const kick = BigInt(ABI.DOORBELL_GPA + ABI.KICK_DOORBELL_OFF);
      if (fd >= 0 && this.#vm!.ioeventfd(kick, 8, fd)) this.#wakeFd = fd;
      else closeEventfd(fd);
    }
    this.#startThreads(main, this.#exitless || this.#scheduled);
  }

  /**
   * The machine half of a VM: the KVM VM with `size` bytes of RAM and vCPU 0
   * (its `kvm_run` mapped), and where the stack ends (#stackTop).
   */
  #machine(size: number): GuestMemory {
    this.#vm = this.#kvm.createVm();
    const mem = this.#mem = GuestMemory.take(size);
    this.#vm.setUserMemoryRegion(0, 0n, BigInt(size), mem.host);
    const vcpu = this.#vcpu = this.#vm.createVcpu(0);
    this.#runSize = this.#kvm.vcpuMmapSize();
    const run = this.#run = vcpu.mapRun(this.#runSize);
    this.#runView = new DataView(Deno.UnsafePointerView.getArrayBuffer(run, this.#runSize));
    this.#syncRegs = (this.#kvm.checkExtension(CAP.SYNC_REGS) & Number(SYNC_X86_REGS)) !== 0;
    if (this.#syncRegs) {
      this.#runView.setBigUint64(LAYOUTS.kvm_run.fields.kvm_valid_regs, SYNC_X86_REGS, true);
    }
    // Per-vCPU blocks at the very top, page tables for protections, then
    // the stack (its top on a 2 MiB boundary, so that one huge page holds
    // what a program uses of it), then the mmap area.
    const poolEnd = size - PERCPU_AREA;
    const stackTop = this.#stackTop = Math.floor((poolEnd - ptPool(size)) / HUGE_PAGE) * HUGE_PAGE;
    // The guest sees the system pages, the table pool and the per-vCPU
    // blocks through 4 KiB entries and uses few of them: a huge page there
    // would only cost the host 2 MiB of clearing at the first touch.
    mem.noHugePages(0, ABI.USER_MIN);
    mem.noHugePages(stackTop, size - stackTop);
    return mem;
  }

  /**
   * fork(2) from the thread being served: a new VM for child `pid` with a
   * copy of this one's memory (the pages it has touched), that thread as
   * its only one (its registers and FPU state, rax 0, clone's stack and TLS
   * if given), the fds (sharing their open file descriptions), cwd, mounts,
   * signal dispositions and mask, and no pending signals. It starts when
   * the process table schedules it.
   * @internal
   */
  fork(pid: number, spec: CloneSpec): Vm {
    const child = new Vm(this.#options, this.#table);
    try {
      child.#forkFrom(this, this.#threads!.serving, pid, spec);
    } catch (e) {
      child.dispose();
      throw e;
    }
    return child;
  }

  #forkFrom(parent: Vm, cpu: Cpu, pid: number, spec: CloneSpec): void {
    const from = parent.#process!;
    this.#pid = pid;
    this.#ppid = parent.#pid;
    this.#kernel = parent.#kernel;
    this.#elf = parent.#elf;
    this.#base = parent.#base;
    this.#objects = parent.#objects;
    this.#sites = parent.#sites;
    this.#libSites = parent.#libSites;
    this.#warned = parent.#warned; // an unsupported syscall is named once per run
    this.#exitless = false;
    this.#scheduled = true;
    this.#mounts = parent.#mounts!.share();
    this.#userEnd = parent.#userEnd;
    this.#cr3 = parent.#cr3;
    const mem = this.#machine(parent.#mem!.size), v = mem.view;
    mem.copyFrom(parent.#mem!);
    // The thread that forked becomes the child's first.
    adoptCpuPages(mem, cpu.id);
    const boot = ABI.BOOT_INFO_ADDR;
    v.setBigUint64(boot + BOOT_INFO.pid, BigInt(pid), true);
    v.setBigUint64(boot + BOOT_INFO.ppid, BigInt(this.#ppid), true);
    Atomics.store(new Int32Array(mem.bytes.buffer, boot + BOOT_INFO.polling, 1), 0, ABI.POLL_OFF);
    v.setBigUint64(ABI.PERCPU_ADDR + PERCPU.tid, BigInt(pid), true);
    const ctid = spec.flags & CLONE.CHILD_CLEARTID ? spec.childTid : 0n;
    v.setBigUint64(ABI.PERCPU_ADDR + PERCPU.clear_child_tid, ctid, true);
    v.setBigUint64(SYSCALL_FRAME_ADDR + SYSCALL_FRAME.indexOf(R.rax) * 8, 0n, true);
    if (spec.stack !== 0n) {
      v.setBigUint64(SYSCALL_FRAME_ADDR + SYSCALL_FRAME.indexOf(R.rsp) * 8, spec.stack, true);
    }
    this.#prot = parent.#prot!.cloneFor(
      mem,
      () => this.#threads?.cpus.filter((c) => c.id > 0).map((c) => pdCopyOf(mem, c.id)) ?? [],
    );
    this.#makeProcess(mem, from.argv, from.exePath, from.cwd);
    const p = this.#process!;
    p.fds = from.fds.copy();
    for (const k of [...INHERITED, "comm", "mm.files"]) {
      const val = from.state.get(k);
      if (val !== undefined) p.state.set(k, Array.isArray(val) ? [...val] : val);
    }
    this.#sig.altstack = parent.#sig.altstack;
    onPastEnd(p, (start, end) => this.#pastEnd(start, end));
    if (this.#sites) onExecMapping(p, (...a) => this.#patchMapping(...a));
    if (this.#rewrite) mapTrampoline(mem, this.#kernel!.zpolineEntry);
    // vCPU 0 resumes the forking thread's syscall frame (rax 0).
    this.#startAtSyscallReturn(this.#vcpu!, 0, this.#cr3, cpu.vcpu, spec, true);
    const main: Cpu = {
      id: 0,
      vcpu: this.#vcpu!,
      runAddr: Deno.UnsafePointer.value(this.#run!),
      runView: this.#runView!,
      tid: pid,
      alive: true,
    };
    this.#startThreads(main, true);
    const put32 = (m: GuestMemory, addr: bigint) => m.view.setUint32(m.check(addr, 4), pid, true);
    if (spec.flags & CLONE.CHILD_SETTID) put32(mem, spec.childTid);
    if (spec.flags & CLONE.PARENT_SETTID) put32(parent.#mem!, spec.parentTid);
  }

  /**
   * Sets vCPU `vcpu` up to leave the guest kernel through its syscall
   * return path (the frame at SYSCALL_FRAME_ADDR in its own pages), with
   * `from`'s FPU state and FS/GS bases (clone's TLS instead, if it set one).
   */
  #startAtSyscallReturn(
    vcpu: VcpuFd,
    id: number,
    cr3: bigint,
    from: VcpuFd,
    spec: CloneSpec,
    fresh: boolean,
  ): void {
    const kernel = this.#kernel!;
    setupVcpu(vcpu, id, cr3, kernel, features!, guestCpl(this.#stats.platform), fresh);
    const sregs = new Uint8Array(LAYOUTS.kvm_sregs.size);
    from.getSregs(sregs);
    const sf = LAYOUTS.kvm_sregs.fields, sv = new DataView(sregs.buffer);
    const fs = spec.flags & CLONE.SETTLS ? spec.tls : sv.getBigUint64(sf.fs, true);
    vcpu.setMsrs([[MSR_FS_BASE, fs], [MSR_GS_BASE, sv.getBigUint64(sf.gs, true)]]);
    const xsave = new Uint8Array(LAYOUTS.kvm_xsave.size);
    from.getXsave(xsave);
    vcpu.setXsave(xsave);
    const regs = new Uint8Array(LAYOUTS.kvm_regs.size);
    const rv = new DataView(regs.buffer);
    rv.setBigUint64(regOffset("rip"), BigInt(kernel.syscallReturn), true);
    rv.setBigUint64(regOffset("rsp"), BigInt(SYSCALL_FRAME_ADDR), true);
    rv.setBigUint64(regOffset("rflags"), 2n, true);
    vcpu.setRegs(regs);
  }

  /**
   * The process half of a VM (its pid, argv, cwd, memory map and signal
   * state) for RAM `mem`; #stackTop, #objects and #mounts are set.
   */
  #makeProcess(mem: GuestMemory, argv: readonly string[], exePath: string, cwd: string): void {
    const pid = this.#pid, objects = this.#objects, stackTop = this.#stackTop;
    const kernel = this.#kernel!;
    this.#process = new GuestProcess(
      mem,
      pid,
      argv,
      exePath,
      this.#mounts!,
      cwd,
      () =>
        procMaps(
          mem,
          kernel.mm,
          objects,
          stackTop - STACK_SIZE,
          stackTop,
          fileMappings(this.#process!),
        ),
    );
    this.#sig = new SignalState(mem, {
      maskAddr: ABI.PERCPU_ADDR + PERCPU.sigmask,
      actionsAddr: ABI.SIGACTIONS_ADDR,
      pendingAddr: ABI.PERCPU_ADDR + PERCPU.sigpending,
      userSp: () =>
        mem.view.getBigUint64(
          physOf(mem, this.#threads?.serving.id ?? 0, ABI.KSTACK_TOP - 8),
          true,
        ),
      threads: {
        current: () => this.#threads?.serving.tid ?? pid,
        maskAddr: (tid) => this.#percpuOf(tid, PERCPU.sigmask),
        pendingAddr: (tid) => this.#percpuOf(tid, PERCPU.sigpending),
        tids: () => this.#threads?.cpus.filter((c) => c.alive).map((c) => c.tid) ?? [pid],
        notify: (tid) => this.#notifyThread(tid),
      },
      armTimer: (ns) => this.#armHostTimer(ns),
    });
    attachSignals(this.#process, this.#sig);
  }

  /** The guest's threads, starting with `main` (on a runner of its own with `onRunner`). */
  #startThreads(main: Cpu, onRunner: boolean): void {
    this.#threads = new Threads(
      this.#threadVm(),
      main,
      this.#pid,
      () => this.#table.allocId(),
      onRunner,
      this.#wakeFd,
    );
    attachThreads(this.#process!, this.#threads);
    this.#sig.wakeAt = () => this.#threads!.nextDeadline();
    this.#sig.idle = (until) => this.#idle(until);
    this.#sig.ended = () => this.#process!.ended !== undefined;
    this.#sig.park = (until, timeout, wake) => {
      const t = this.#threads!;
      if (t.onMain) return false;
      const tid = t.current, cpu = t.serving;
      // The results are computed as the parked thread (its mask, its signals).
      const as = (f: () => bigint) => {
        let r = BigInt(-E.EINTR);
        this.#asThread(cpu, () => r = f());
        t.resume(tid, r);
      };
      t.park(until, () => as(timeout), wake && (() => as(wake)));
      return true;
    };
  }

  /** --rewrite=static: `syscall` (0f 05) → `call *%rax` (ff d0) at every site found. */
  #patchSites(mem: GuestMemory, bytes: Uint8Array, elf: ElfFile, base: number): void {
    for (const addr of this.#sites!(bytes, elf)) this.#patchAt(mem, base + addr);
  }

  /** Rewrites the `syscall` at guest `at`, if one is there. */
  #patchAt(mem: GuestMemory, at: number): void {
    if (at + 2 > mem.size || mem.view.getUint16(at, true) !== 0x050f) return;
    mem.view.setUint16(at, 0xd0ff, true);
    this.rewrittenSites++;
  }

  /**
   * --rewrite=static for a library ld.so maps: patches the sites of the
   * file behind `hostFd` that fall in the part mapped (file bytes from
   * `offset`, `len` of them at guest `start`). Sites are found once per file.
   */
  #patchMapping(hostFd: number, offset: number, start: number, len: number): void {
    let path: string;
    try {
      path = Deno.readLinkSync(`/proc/self/fd/${hostFd}`);
    } catch {
      return;
    }
    let offs = this.#libSites.get(path);
    if (!offs) {
      offs = [];
      try {
        const bytes = mapFile(path), elf = parseElf(bytes, path);
        const loads = elf.segments.filter((s) => s.type === PT_LOAD);
        for (const addr of this.#sites!(bytes, elf)) {
          const seg = loads.find((s) => addr >= s.vaddr && addr < s.vaddr + s.filesz);
          if (seg) offs.push(addr - seg.vaddr + seg.offset);
        }
      } catch { /* not an ELF file we can read: leave it */ }
      this.#libSites.set(path, offs);
    }
    for (const off of offs) {
      if (off >= offset && off + 2 <= offset + len) this.#patchAt(this.#mem!, start + off - offset);
    }
  }

  /** A trace line; with the thread's id once the process has more than one, as `strace -f`. */
  #traced(cpu: Cpu | undefined, line: string): void {
    const t = this.#threads;
    const several = this.#table.multi || (t !== undefined && t.count > 1);
    this.#trace!(several ? `[pid ${cpu?.tid ?? this.#pid}] ${line}` : line);
  }

  /** Writes a syscall result into `cpu`'s host-call block. */
  #setRet(cpu: Cpu, ret: bigint): void {
    const at = physOf(this.#mem!, cpu.id, ABI.HOSTCALL_ADDR + HOSTCALL.ret);
    this.#mem!.view.setBigInt64(at, BigInt.asIntN(64, ret), true);
  }

  /** The host's view of thread `tid`'s `struct percpu` field, if it lives. */
  #percpuOf(tid: number, field: number): number | undefined {
    // Before the threads exist there is vCPU 0 only.
    if (!this.#threads) return ABI.PERCPU_ADDR + field;
    const cpu = this.#threads.cpus.find((c) => c.alive && c.tid === tid);
    return cpu ? physOf(this.#mem!, cpu.id, ABI.PERCPU_ADDR + field) : undefined;
  }

  /**
   * Gets a signal to thread `tid`, which is not the one being served: vCPU
   * 0 through the host timer (as an async signal); a parked thread's wait
   * ends with EINTR; a running one is kicked out of KVM_RUN. A thread that
   * waits to be served acts on it after its call.
   */
  #notifyThread(tid: number): void {
    const t = this.#threads!, cpu = t.cpus.find((c) => c.alive && c.tid === tid);
    if (!cpu) return;
    if (!cpu.runner) {
      this.#sig.retryAt = monotonicNs() + 1000n;
      this.#sig.armHost(undefined, true);
      return;
    }
    t.interrupt(cpu);
  }

  /** What the thread machinery needs from the VM. */
  #threadVm(): ThreadVm {
    const mem = this.#mem!;
    return {
      vm: this.#vm!,
      runSize: this.#runSize,
      mapRun: (vcpu) => {
        const run = vcpu.mapRun(this.#runSize);
        this.#runs.push(run);
        const view = new DataView(Deno.UnsafePointerView.getArrayBuffer(run, this.#runSize));
        if (this.#syncRegs) {
          view.setBigUint64(LAYOUTS.kvm_run.fields.kvm_valid_regs, SYNC_X86_REGS, true);
        }
        return { addr: Deno.UnsafePointer.value(run), view };
      },
      setupChild: (child, parent, spec, tid) => this.#setupChild(child, parent, spec, tid),
      afterResume: (cpu, ret) => this.#asThread(cpu, () => this.#afterResume(cpu, ret)),
      restartSyscall: (cpu) => this.#asThread(cpu, () => this.#afterSyscall(0n, true, true)),
      serveExit: (cpu) => this.#serveExit(cpu),
      setRet: (cpu, ret) => this.#setRet(cpu, ret),
      ended: () => this.#process!.ended !== undefined,
      signalled: (cpu) => this.#signalled(cpu),
      clearTid: (cpu) =>
        mem.view.getBigUint64(physOf(mem, cpu.id, ABI.PERCPU_ADDR + PERCPU.clear_child_tid), true),
    };
  }

  /**
   * Sets `child` up as clone's child of `parent`: its own page tables and
   * per-thread pages, the parent's syscall frame with rax 0 (and the new
   * stack), the parent's FPU state and TLS (or the new TLS), started at the
   * guest kernel's syscall return path.
   */
  #setupChild(child: Cpu, parent: Cpu, spec: CloneSpec, tid: number): void {
    const mem = this.#mem!, v = mem.view;
    const cr3 = buildCpuTables(mem, child.id, this.#cr3);
    const pcpu = (cpu: Cpu, field: number) => physOf(mem, cpu.id, ABI.PERCPU_ADDR + field);
    v.setBigUint64(pcpu(child, PERCPU.tid), BigInt(tid), true);
    v.setBigUint64(
      pcpu(child, PERCPU.sigmask),
      v.getBigUint64(pcpu(parent, PERCPU.sigmask), true),
      true,
    );
    if (spec.flags & CLONE.CHILD_CLEARTID) {
      v.setBigUint64(pcpu(child, PERCPU.clear_child_tid), spec.childTid, true);
    }
    const from = physOf(mem, parent.id, SYSCALL_FRAME_ADDR);
    const to = physOf(mem, child.id, SYSCALL_FRAME_ADDR);
    mem.bytes.copyWithin(to, from, from + SYSCALL_FRAME.length * 8);
    v.setBigUint64(to + SYSCALL_FRAME.indexOf(R.rax) * 8, 0n, true);
    if (spec.stack !== 0n) v.setBigUint64(to + SYSCALL_FRAME.indexOf(R.rsp) * 8, spec.stack, true);

    // A vCPU that ran before keeps its CPUID: KVM refuses to set it again.
    const fresh = !child.ran;
    child.ran = true;
    this.#startAtSyscallReturn(child.vcpu, child.id, cr3, parent.vcpu, spec, fresh);

    const put32 = (addr: bigint) => v.setUint32(mem.check(addr, 4), tid, true);
    if (spec.flags & CLONE.PARENT_SETTID) put32(spec.parentTid);
    if (spec.flags & CLONE.CHILD_SETTID) put32(spec.childTid);
  }

  /** Whether `cpu`'s thread has a signal to act on (pending and not blocked). */
  #signalled(cpu: Cpu): boolean {
    let due = false;
    this.#asThread(cpu, () => due = this.#sig.next() !== 0);
    return due;
  }

  /** Runs `f` with `cpu`'s vCPU as the one the delivery paths act on. */
  #asThread(cpu: Cpu, f: () => void): void {
    const t = this.#threads!, outer = t.serving;
    const [vcpu, view] = [this.#vcpu, this.#runView];
    t.serving = cpu;
    this.#vcpu = cpu.vcpu;
    this.#runView = cpu.runView;
    try {
      f();
    } finally {
      t.serving = outer;
      this.#vcpu = vcpu;
      this.#runView = view;
    }
  }

  /**
   * Serves a worker vCPU's exit on the main thread: the same paths as
   * vCPU 0's, pointed at that vCPU. A fault there ends the process (signals
   * are delivered to the main thread only).
   */
  #serveExit(cpu: Cpu): void {
    this.#asThread(cpu, () => {
      const p = this.#process!;
      if (cpu.ctl && Atomics.exchange(cpu.ctl, CTL.intr, 0) === 2) {
        // Kicked out of KVM_RUN for a signal, not an exit.
        this.#deliverAsync();
        return;
      }
      // A failed KVM_RUN left no exit to read: say how it failed.
      const err = cpu.runner?.error ?? 0;
      const crash = err
        ? this.#internal(`KVM_RUN failed on a thread's vCPU: ${strerror(err)}`)
        : this.#onExit(cpu.runView);
      if (crash && !p.ended) {
        this.#crash = crash;
        p.exit(0, crash.signal);
      }
    });
  }

  /**
   * Acts on the exit in `view` (the `struct kvm_run` of the vCPU being
   * served): a host call, a CPU exception, or a crash report for anything else.
   */
  #onExit(view: DataView): CrashReport | undefined {
    this.#stats.exits++;
    const f = LAYOUTS.kvm_run.fields;
    const reason = view.getUint32(f.exit_reason, true);
    if (reason === EXIT.MMIO) {
      const gpa = Number(view.getBigUint64(f["mmio.phys_addr"], true));
      if (gpa === ABI.DOORBELL_GPA) {
        this.#hostCall();
        return undefined;
      }
      const vector = gpa - ABI.DOORBELL_GPA - ABI.EXC_DOORBELL_OFF;
      return vector >= 0 && vector < 32
        ? this.#exception(vector)
        : this.#internal(`store to unbacked guest-physical address 0x${gpa.toString(16)}`);
    }
    if (reason === EXIT.SHUTDOWN) return this.#internal("triple fault (the vCPU shut down)");
    if (reason === EXIT.INTERNAL_ERROR) {
      const sub = view.getUint32(f["internal.suberror"], true);
      return this.#internal(`KVM internal error (suberror ${sub})`);
    }
    return this.#internal(`unexpected exit reason ${reason}`);
  }

  /** The main thread waits until host monotonic `until`, serving other threads. */
  #idle(until: bigint): void {
    const threads = this.#threads!;
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

  #writeBootInfo(
    mem: GuestMemory,
    b: { entry: number; sp: number; brk: number; mmapMax: number; tscKhz: number } & {
      uid: number;
      gid: number;
    },
  ): void {
    const base = ABI.BOOT_INFO_ADDR, v = mem.view;
    mem.bytes.fill(0, base, base + BOOT_INFO.size);
    const put = (off: number, x: number | bigint) => v.setBigUint64(base + off, BigInt(x), true);
    put(BOOT_INFO.magic, BOOT_MAGIC);
    put(BOOT_INFO.entry, b.entry);
    put(BOOT_INFO.user_sp, b.sp);
    put(BOOT_INFO.brk_start, b.brk);
    put(BOOT_INFO.mmap_min, b.brk);
    put(BOOT_INFO.mmap_max, b.mmapMax);
    put(BOOT_INFO.mem_size, mem.size);
    put(BOOT_INFO.tsc_mult, (1000000n << 32n) / BigInt(b.tscKhz));
    put(BOOT_INFO.pid, this.#pid);
    put(BOOT_INFO.ppid, this.#ppid);
    put(BOOT_INFO.uid, b.uid);
    put(BOOT_INFO.gid, b.gid);
    put(BOOT_INFO.trace, this.#trace ? 1 : 0);
    put(BOOT_INFO.rewrite, this.#lazy ? ABI.REWRITE_LAZY : ABI.REWRITE_OFF);
    mem.bytes.set(hostUtsname(), base + BOOT_INFO.uts);
    for (let nr = 0; nr < ABI.NR_SYSCALLS; nr++) {
      // An overridden syscall always reaches the host (past the guest
      // kernel's own handler); any may come exitless unless it needs the vCPU.
      const host = this.#registry.isOverridden(nr) ? ABI.ROUTE_HOST : ABI.ROUTE_LOCAL;
      const poll = this.#exitless && !DOORBELL_ONLY.has(nr) ? ABI.ROUTE_POLL : 0;
      mem.bytes[base + BOOT_INFO.route + nr] = host | poll;
    }
  }

  /**
   * Runs the guest to its end: its process and every process it starts
   * (the first one's end ends the others).
   */
  run(): RunResult {
    const deadline = this.#timeout
      ? monotonicNs() + BigInt(Math.round(this.#timeout * 1e9))
      : undefined;
    return this.#table.run(deadline);
  }

  /**
   * Starts the clock of this image's run; the run ends with a SIGKILL at `deadline`.
   * @internal
   */
  begin(deadline?: bigint): void {
    this.#tRun = performance.now();
    this.#stats.bootMs = this.#tRun - this.#t0;
    if (deadline !== undefined) {
      this.#sig.runDeadline = deadline;
      this.#sig.armHost();
    }
  }

  /** Whether the process has ended (exit, a fatal signal, execve), and how. */
  get ended(): { code: number; signal?: number } | undefined {
    return this.#process?.ended;
  }

  /**
   * The guest process as the syscall modules see it.
   * @internal
   */
  get process(): Process {
    return this.#process!;
  }

  /**
   * The process's signal state (dispositions, pending signals).
   * @internal
   */
  get signals(): SignalState {
    return this.#sig;
  }

  /**
   * Runs the process on this thread (vCPU 0 here with the doorbell, or the
   * exitless loop) until it ends or must hand over to the process table
   * (a fork, an execve).
   * @internal
   */
  runSolo(): void {
    const vcpu = this.#vcpu!, view = this.#runView!, p = this.#process!, sig = this.#sig;
    const threads = this.#threads!, main = threads.main;
    if (this.#exitless) return this.#runExitless();
    while (!p.ended && !this.#handoff) {
      if (!main.alive) {
        // The first thread has exited; the others go on.
        this.#idle(threads.nextDeadline() ?? monotonicNs() + 50_000_000n);
        sig.fireTimers();
      } else if (!vcpu.run()) {
        view.setUint8(LAYOUTS.kvm_run.fields.immediate_exit, 0);
        this.#onTimer();
      } else {
        const crash = this.#onExit(view);
        if (crash) {
          this.#crash = crash;
          p.exit(0, crash.signal);
        }
      }
      if (threads.cpus.length > 1 && !p.ended) {
        threads.pollWatched(); // a call just served may have made a parked wait's fd ready
        threads.serveWorkers();
        sig.armHost();
      }
      this.#checkTimeout();
    }
  }

  #checkTimeout(): void {
    const p = this.#process!;
    if (this.#sig.timedOut && !p.ended) {
      this.#timedOut = true;
      p.exit(0, SIG.SIGKILL);
    }
  }

  /**
   * vfork: the calling thread waits until the child has called execve or
   * ended ({@linkcode releaseVfork}); other threads run on. Throws
   * WouldBlock for a call that came exitless (before anything is done).
   * @internal
   */
  holdForVfork(): void {
    const t = this.#threads!;
    if (t.polled) throw new WouldBlock();
    if (t.onMain) {
      // vCPU 0 on this thread: it moves to a runner, started at the release.
      this.#held = true;
      return;
    }
    t.park(0x7fffffffffffffffn, () => {}, () => {});
  }

  /**
   * The vfork child `child` (tid `tid` of this process waited for it) has
   * called execve or ended: what it wrote to user memory, which on Linux
   * was this process's own, is copied back (the parent's only thread was
   * stopped), and the waiting thread goes on with the child's pid.
   * @internal
   */
  releaseVfork(child: Vm, tid: number, pid: number): void {
    const threads = this.#threads!;
    if (threads.count === 1) this.#mem!.copyFrom(child.#mem!, ABI.USER_MIN, this.#stackTop);
    if (this.#held) {
      this.#held = false;
      if (threads.main.alive && !this.#process!.ended) threads.startMain();
      return;
    }
    threads.resume(tid, BigInt(pid));
  }

  /**
   * A fork or execve: the loop on this thread gives way to the process table's.
   * @internal
   */
  handOff(): void {
    if (!this.#scheduled) this.#handoff = true;
  }

  /**
   * From now on the process table's loop serves this VM among others:
   * vCPU 0 gets a runner of its own (if the main thread ran it), host calls
   * come by the doorbell, timers are looked at by the table's loop, and
   * every runner writes the table's `wakeFd` at each exit.
   * @internal
   */
  schedule(wakeFd: number): void {
    const threads = this.#threads!;
    if (!this.#scheduled) {
      this.#armHostTimer(undefined);
      this.#scheduled = true;
      this.#handoff = false;
      if (threads.mainRuns) {
        const xsave = new Uint8Array(LAYOUTS.kvm_xsave.size);
        this.#vcpu!.getXsave(xsave);
        this.#runView!.setUint8(LAYOUTS.kvm_run.fields.immediate_exit, 0);
        threads.useWakeFd(wakeFd);
        threads.moveMainToRunner(xsave);
        if (threads.main.alive && !this.#process!.ended && !this.#held) threads.startMain();
      } else {
        threads.useWakeFd(wakeFd);
        this.#setPolling(false);
        this.#pollHostCalls();
      }
      this.#sig.armHost(undefined, true);
      return;
    }
    threads.useWakeFd(wakeFd);
    // A new image or a forked child starts once; a running one is left alone.
    if (this.#launched) return;
    this.#launched = true;
    if (threads.main.alive && !this.#process!.ended) threads.startMain();
  }

  /**
   * One round of the process table's loop for this VM: serves its runners'
   * exits (and requests posted exitless), parked deadlines and timers;
   * returns how many calls it served.
   * @internal
   */
  step(): number {
    const p = this.#process!, threads = this.#threads!;
    if (p.ended) return 0;
    let n = this.#exitless ? this.#pollHostCalls() : 0;
    threads.pollWatched();
    n += threads.serveWorkers();
    if (!p.ended) this.#exitlessTimers();
    this.#checkTimeout();
    return n;
  }

  /**
   * When {@linkcode step} must run again though no runner exits (host monotonic ns).
   * @internal
   */
  wakeAt(): bigint | undefined {
    return this.#exitlessWake();
  }

  /**
   * Adds the vCPUs whose parked waits watch fds to `out`.
   * @internal
   */
  watching(out: Cpu[]): void {
    for (const c of this.#threads!.cpus) if (c.parked?.watch?.length) out.push(c);
  }

  /**
   * A signal from another process (kill): raised for the process, and a
   * thread that does not block it is interrupted to act on it.
   * @internal
   */
  raise(info: SigInfo): void {
    const p = this.#process!;
    if (p.ended) return;
    this.#sig.raise(info);
    const threads = this.#threads!;
    for (const c of threads.cpus) {
      if (!c.alive || !c.runner || c.busy) continue;
      if (this.#signalled(c)) {
        threads.interrupt(c);
        return;
      }
    }
  }

  /**
   * The process's parent is now `ppid` (its own ended: getppid sees the first process).
   * @internal
   */
  setParent(ppid: number): void {
    this.#ppid = ppid;
    const at = ABI.BOOT_INFO_ADDR + BOOT_INFO.ppid;
    if (this.#mem) this.#mem.view.setBigUint64(at, BigInt(ppid), true);
  }

  /**
   * Ends this image's run: stops its threads, writes back shared file
   * mappings, and (unless `quiet`: a replaced image, or a process killed
   * with the run) reports a crash or a timeout. The run's result.
   * @internal
   */
  finish(quiet = false): RunResult {
    if (this.#finished) return this.#finished;
    const p = this.#process!, threads = this.#threads!;
    try {
      threads.stopAll();
      this.#armHostTimer(undefined);
    } finally {
      flushSharedMappings(p);
    }
    const crash = this.#crash;
    if (this.#sig.timedOut && p.ended?.signal === SIG.SIGKILL) this.#timedOut = true;
    this.#stats.runMs = performance.now() - this.#tRun;
    const kvm = threads.cpus.reduce(
      (sum, cpu) => addKvmStats(sum, cpu.vcpu.counters()),
      this.#vm!.counters(),
    );
    this.#stats.kvm = Object.fromEntries(Object.entries(kvm).filter(([, n]) => n !== 0));
    if (crash && !quiet) this.#diag(formatCrash(crash));
    if (this.#timedOut && !quiet) {
      this.#diag(`hermitux: timed out after ${this.#timeout} s; guest stopped`);
    }
    const end = p.ended ?? { code: 0, signal: SIG.SIGKILL };
    return this.#finished = {
      status: end.signal ? 128 + end.signal : end.code,
      exitCode: end.signal ? undefined : end.code,
      signal: end.signal,
      crash,
      timedOut: this.#timedOut,
      stats: this.#stats,
      processes: 1,
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
  #armHostTimer(ns: bigint | undefined): void {
    if (this.#exitless || this.#scheduled) {
      // No KVM_RUN on this thread to interrupt: the run loop waits for it.
      this.#wakeNs = ns === undefined ? 0n : monotonicNs() + ns;
      return;
    }
    if (ns === undefined && !this.#timerArmed) return;
    ignoreAlarms();
    if (this.#timerId === undefined) {
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
      this.#timerId = id[0];
    }
    this.#timerArmed = ns !== undefined;
    const t = new BigInt64Array(4); // it_interval, it_value
    if (ns !== undefined) t.set([0n, TIMER_REPEAT_NS, ns / 1_000_000_000n, ns % 1_000_000_000n]);
    hostSyscall(NR_TIMER_SETTIME, this.#timerId, 0, bufferAddress(new Uint8Array(t.buffer)), 0);
  }

  /** KVM_RUN was interrupted by the host timer: expire timers, deliver what is due. */
  #onTimer(): void {
    const sig = this.#sig, now = monotonicNs();
    sig.retryAt = 0n;
    sig.fireTimers(now);
    if (sig.timedOut) return;
    if (sig.next()) this.#deliverAsync();
    sig.armHost(now, true);
  }

  /**
   * Delivers pending signals to the running guest, interrupted at an
   * arbitrary instruction. Inside the guest kernel or an exception stub its
   * registers are not the user's: try again in a moment.
   */
  #deliverAsync(): void {
    // After the kick's KVM_RUN the registers are in kvm_run's sync area (when KVM keeps them there).
    const live = this.#regs();
    const regs = new BigUint64Array(18);
    for (let i = 0; i < 18; i++) regs[i] = live.getBigUint64(i * 8, true);
    if (regs[R.rip] < BigInt(ABI.USER_MIN)) {
      // In the guest kernel (or a signal stub): tried again shortly. Another
      // thread's kernel may also report it on its way out (HC_SIGNAL).
      this.#sig.retryAt = monotonicNs() + RETRY_NS;
      return;
    }
    if (this.#deliver({ regs, err: 0n, trapno: 0n, cr2: 0n })) this.#setRegs(regs);
  }

  /**
   * Acts on every pending, unblocked signal on top of `ctx` (changing it to
   * the vCPU's way into the last handler): runs handlers, applies default
   * actions. `fpu` is the FPU state of `ctx` when it is not the vCPU's own
   * (after rt_sigreturn). Returns whether `ctx` changed.
   */
  #deliver(ctx: UserContext, fpu?: Uint8Array): boolean {
    const s = this.#sig, p = this.#process!, mem = this.#mem!;
    const { xsaveSize, xcr0 } = features!;
    let changed = false;
    let image = fpu; // what the next frame saves; undefined: the vCPU's own, XSAVEd by the guest
    let saveAt = 0n;
    for (let sig = s.next(); sig && !p.ended; sig = s.next()) {
      const info = s.take(sig);
      const act = s.action(sig);
      if (this.#trace) this.#traced(this.#threads?.serving, formatSignal(info));
      if (act.handler === SIG_DFL) {
        p.exit(0, sig); // ignored signals never come out of next()
        break;
      }
      const mask = s.suspendMask ?? s.mask;
      s.suspendMask = undefined;
      const fp = (act.flags & SA.RESTORER) !== 0n
        ? pushFrame(mem, s, sig, info, act, ctx, mask, image, xsaveSize, xcr0)
        : undefined;
      if (fp === undefined) {
        // Linux's force_sigsegv: a second failure (or a failing SIGSEGV) kills.
        if (sig === SIG.SIGSEGV) s.setAction(sig, { ...act, handler: SIG_DFL });
        s.force({ signo: SIG.SIGSEGV, code: SI.KERNEL });
        continue;
      }
      if (!image) saveAt = fp;
      s.mask = s.mask | act.mask | (act.flags & SA.NODEFER ? 0n : bit(sig));
      if (act.flags & SA.RESETHAND) {
        s.setAction(sig, { handler: SIG_DFL, flags: 0n, restorer: 0n, mask: 0n });
      }
      image = this.#initXsave; // the handler starts with a clean FPU, as on Linux
      changed = true;
    }
    if (changed) {
      const k = this.#kernel!;
      this.#viaStub(ctx.regs, saveAt ? k.sigEnterSave : k.sigEnter, saveAt);
    }
    return changed;
  }

  /**
   * Makes `regs` enter the guest kernel's signal stub `stub` (entry.S) with
   * argument `arg`; what the stub loads last (rip, rax, rdx, r11, rcx) goes
   * to this thread's percpu slots, with the argument.
   */
  #viaStub(regs: BigUint64Array, stub: number, arg: bigint): void {
    const mem = this.#mem!, id = this.#threads?.serving.id ?? 0;
    const slot = physOf(mem, id, ABI.PERCPU_ADDR + PERCPU.sig_rip);
    [R.rip, R.rax, R.rdx, R.r11, R.rcx].forEach((r, i) =>
      mem.view.setBigUint64(slot + i * 8, regs[r], true)
    );
    mem.view.setBigUint64(physOf(mem, id, ABI.PERCPU_ADDR + PERCPU.sig_arg), arg, true);
    regs[R.rip] = BigInt(stub);
  }

  /**
   * For a call served exitless (its vCPU runs on): resumes `regs` through
   * the guest kernel's own return path, which pops the syscall frame, loads
   * rflags from its r11 and jumps to its rcx. Both point at a signal stub,
   * which loads the real rcx and r11 from the slots.
   */
  #toFrame(regs: BigUint64Array): void {
    const k = this.#kernel!, stubs = [k.sigEnterSave, k.sigEnter, k.sigReturn, k.sigResume];
    if (!stubs.includes(Number(regs[R.rip]))) this.#viaStub(regs, k.sigResume, 0n);
    const mem = this.#mem!, id = this.#threads?.serving.id ?? 0;
    const frame = physOf(mem, id, SYSCALL_FRAME_ADDR), out = regs.slice();
    out[R.rcx] = regs[R.rip];
    out[R.r11] = regs[R.rflags];
    SYSCALL_FRAME.forEach((r, i) => mem.view.setBigUint64(frame + i * 8, out[r], true));
  }

  /** Whether this thread's syscall frame already resumes through a signal stub (#toFrame). */
  #frameTaken(): boolean {
    const mem = this.#mem!, id = this.#threads?.serving.id ?? 0;
    const frame = physOf(mem, id, SYSCALL_FRAME_ADDR);
    const rcx = mem.view.getBigUint64(frame + SYSCALL_FRAME.indexOf(R.rcx) * 8, true);
    return rcx < BigInt(ABI.USER_MIN);
  }

  /**
   * Whether rt_sigreturn can be served exitless: not when the context it
   * returns to is single-stepped (TF would trap in the stubs and the frame's
   * popfq) or its FPU image does not fit the scratch page (KVM_SET_XSAVE).
   */
  #sigreturnExitless(): boolean {
    const mem = this.#mem!, id = this.#threads?.serving.id ?? 0;
    const frame = physOf(mem, id, SYSCALL_FRAME_ADDR);
    if (features!.xsaveSize > ABI.FPU_SCRATCH_SIZE) return false;
    const rsp = mem.view.getBigUint64(frame + SYSCALL_FRAME.indexOf(R.rsp) * 8, true);
    // A bad frame is fine: it ends in SIGSEGV, delivered through the frame.
    return !((savedRflags(mem, rsp) ?? 0n) & TF);
  }

  /**
   * Resumes `regs` with the FPU state `image` (rt_sigreturn): through the
   * sig_return stub, which loads it from the scratch page, or with
   * KVM_SET_XSAVE where the stub cannot (a single-stepped context: TF would
   * trap in the stub). Returns false for an image KVM refuses.
   */
  #restoreFpu(regs: BigUint64Array, image: Uint8Array): boolean {
    const { xsaveSize } = features!;
    if (xsaveSize <= ABI.FPU_SCRATCH_SIZE && !(regs[R.rflags] & TF)) {
      const mem = this.#mem!, id = this.#threads?.serving.id ?? 0;
      mem.bytes.set(image.subarray(0, xsaveSize), physOf(mem, id, ABI.FPU_SCRATCH_ADDR));
      this.#viaStub(regs, this.#kernel!.sigReturn, BigInt(ABI.FPU_SCRATCH_ADDR));
      return true;
    }
    try {
      this.#vcpu!.setXsave(image);
      return true;
    } catch {
      return false;
    }
  }

  /** Sets the vCPU's registers before the next KVM_RUN (through kvm_run's sync area when it can). */
  #setRegs(regs: BigUint64Array): void {
    const view = this.#runView!, f = LAYOUTS.kvm_run.fields;
    if (view.getBigUint64(f.kvm_valid_regs, true) & SYNC_X86_REGS) {
      new BigUint64Array(view.buffer, f["s.regs"], regs.length).set(regs);
      view.setBigUint64(f.kvm_dirty_regs, view.getBigUint64(f.kvm_dirty_regs, true) | 1n, true);
    } else {
      this.#vcpu!.setRegs(new Uint8Array(regs.buffer, regs.byteOffset, LAYOUTS.kvm_regs.size));
    }
  }

  /**
   * After a host-served syscall (or one the guest kernel served that left a
   * pending signal unblocked): unwind a signal frame for rt_sigreturn, then
   * deliver. The user context is the guest kernel's syscall frame with the
   * result in rax; when it changes, the guest kernel's own return path is
   * abandoned (each syscall entry starts on a fresh kernel stack).
   */
  #afterSyscall(ret: bigint, restart = false, always = false, polled = false): void {
    const s = this.#sig, p = this.#process!, mem = this.#mem!;
    if (s.real.due !== 0n) s.fireTimers();
    if (p.ended || (!always && !s.sigreturn && !(s.pending & ~s.mask))) return;
    const regs = new BigUint64Array(18);
    const frame = physOf(mem, this.#threads?.serving.id ?? 0, SYSCALL_FRAME_ADDR);
    SYSCALL_FRAME.forEach((r, i) => regs[r] = mem.view.getBigUint64(frame + i * 8, true));
    // The frame's rax is the syscall number: a restart runs the same syscall
    // instruction (or rewritten call, also 2 bytes) again once the handler returns.
    regs[R.rip] = restart ? regs[R.rcx] - 2n : regs[R.rcx];
    if (!restart) regs[R.rax] = ret;
    regs[R.rflags] = regs[R.r11];
    let ctx: UserContext = { regs, err: 0n, trapno: 0n, cr2: 0n };
    let changed = false;
    let fpu: Uint8Array | undefined;
    if (s.sigreturn) {
      s.sigreturn = false;
      const { xsaveSize, xcr0 } = features!;
      const saved = popFrame(mem, regs[R.rsp], regs[R.r11], xsaveSize, xcr0);
      if (!saved) {
        s.force({ signo: SIG.SIGSEGV, code: SI.KERNEL });
      } else {
        ctx = saved.ctx;
        fpu = saved.xsave;
        s.mask = saved.mask;
        const st = saved.stack, mode = st.flags & ~SS.AUTODISARM;
        if (!s.onAltstack(ctx.regs[R.rsp])) {
          if (mode === SS.DISABLE) s.altstack = { sp: 0n, size: 0n, flags: st.flags };
          else if ((mode === 0 || mode === SS.ONSTACK) && st.size >= 2048n) s.altstack = st;
        }
        changed = true;
      }
    }
    // Served exitless, the vCPU runs on: the syscall frame carries the change.
    const apply = (r: BigUint64Array) => polled ? this.#toFrame(r) : this.#setRegs(r);
    if (this.#deliver(ctx, fpu)) {
      apply(ctx.regs);
    } else if (fpu && !this.#restoreFpu(ctx.regs, fpu)) {
      // A corrupt FPU image: SIGSEGV, on top of the context it came with.
      s.force({ signo: SIG.SIGSEGV, code: SI.KERNEL });
      if (this.#deliver(ctx)) apply(ctx.regs);
    } else if (changed || always) {
      apply(ctx.regs);
    }
  }

  /** A parked syscall's result is set: ERESTARTSYS becomes EINTR or a restart, as after a call. */
  #afterResume(cpu: Cpu, ret: bigint): void {
    const restart = this.#restarts(ret);
    if (ret === BigInt(-ERESTARTSYS)) {
      ret = BigInt(-E.EINTR);
      this.#setRet(cpu, ret);
    }
    this.#afterSyscall(ret, restart);
  }

  /**
   * For a call interrupted by a signal (ERESTARTSYS): whether it runs again
   * after the handler (SA_RESTART) rather than return EINTR.
   */
  #restarts(ret: bigint): boolean {
    if (ret !== BigInt(-ERESTARTSYS)) return false;
    const sig = this.#sig.next();
    const act = this.#sig.action(sig);
    return sig !== 0 && (act.flags & SA.RESTART) !== 0n && act.handler > 1n;
  }

  /**
   * Serves the request in the host-call block of the thread being served.
   * `polled`: it came exitless, its vCPU still runs, so no registers may
   * change; returns false if it must come again through the doorbell.
   */
  #hostCall(polled = false): boolean {
    const cpu = this.#threads!.serving;
    const mem = this.#mem!, v = mem.view, hc = physOf(mem, cpu.id, ABI.HOSTCALL_ADDR);
    let kind = v.getUint32(hc + HOSTCALL.kind, true);
    const nr = v.getUint32(hc + HOSTCALL.nr, true);
    if (kind & ABI.HC_POSTED) {
      // Posted to the poller, then the doorbell as polling stopped: once.
      kind &= ~ABI.HC_POSTED;
      const seq = v.getUint32(hc + HOSTCALL.seq, true);
      if (!polled) {
        if (v.getUint32(hc + HOSTCALL.ack, true) === seq) return true;
        v.setUint32(hc + HOSTCALL.ack, seq, true);
      }
    }
    const anyKind = [ABI.HC_CLOCK, ABI.HC_TRACE, ABI.HC_PROT, ABI.HC_SIGNAL] as number[];
    if (polled && !anyKind.includes(kind)) {
      if (kind !== ABI.HC_SYSCALL || DOORBELL_ONLY.has(nr)) return false;
      if (nr === NR_RT_SIGRETURN && !this.#sigreturnExitless()) return false;
    }
    const args = [0, 1, 2, 3, 4, 5].map((i) => v.getBigUint64(hc + HOSTCALL.arg + i * 8, true));
    let ret = 0n;
    switch (kind) {
      case ABI.HC_SYSCALL: {
        const name = syscallName(nr);
        const site = Number(v.getBigUint64(hc + HOSTCALL.site, true));
        const count = this.#stats.syscalls[name] ?? 0;
        const timed = count < 64 || (count & 15) === 0;
        const t0 = timed ? performance.now() : 0;
        const threads = this.#threads!;
        threads.polled = polled;
        try {
          ret = dispatch(
            this.#registry,
            { nr, args, site, process: this.#process! },
            this.#diag,
            this.#warned,
          );
        } catch (e) {
          if (e instanceof WouldBlock) return false;
          throw e;
        } finally {
          threads.polled = false;
        }
        this.#stats.hostCalls++;
        this.#stats.syscalls[name] = count + 1;
        if (timed) {
          const ms = (performance.now() - t0) * (count < 64 ? 1 : 16);
          this.#stats.syscallMs[name] = (this.#stats.syscallMs[name] ?? 0) + ms;
        }
        // Interrupted by a signal: restarted after an SA_RESTART handler, else EINTR.
        const restart = !polled && this.#restarts(ret);
        if (ret === BigInt(-ERESTARTSYS)) ret = BigInt(-E.EINTR);
        // A file mmap/munmap the guest kernel forwards is traced by the kernel itself.
        const forwarded = FORWARDED.has(nr) && !this.#registry.isOverridden(nr);
        if (this.#trace && !this.#process!.ended && !forwarded) {
          this.#traced(cpu, formatSyscall(mem, nr, args, ret));
        }
        if (this.#trace && this.#process!.ended) this.#traced(cpu, `${name}(${args[0]}) = ?`);
        v.setBigInt64(hc + HOSTCALL.ret, BigInt.asIntN(64, ret), true);
        // Exitless, the guest kernel asks for any signal this left (HC_SIGNAL).
        // A call that parked has not returned: its signals wait for its
        // resumption (afterResume); delivering one now would build the frame
        // on a call that has not finished and block the signal meanwhile.
        if (!cpu.parked) this.#afterSyscall(ret, restart && !polled, false, polled);
        return true;
      }
      case ABI.HC_SIGNAL:
        v.setBigInt64(hc + HOSTCALL.ret, args[0], true);
        if (this.#frameTaken()) {
          // The call before rewrote the frame (#toFrame) for a signal stub
          // not yet run: a signal raised since then goes in a moment, by a kick.
          this.#sig.retryAt = monotonicNs() + RETRY_NS;
        } else {
          this.#afterSyscall(args[0], false, false, polled);
        }
        return true;
      case ABI.HC_TRACE:
        if (this.#trace) {
          this.#traced(cpu, formatSyscall(mem, nr, args, v.getBigInt64(hc + HOSTCALL.ret, true)));
        }
        return true;
      case ABI.HC_CLOCK: {
        const ts = new BigInt64Array(2);
        const bytes = new Uint8Array(ts.buffer);
        libc().clock_gettime(0, bytes);
        ret = ts[0] * 1000000000n + ts[1];
        libc().clock_gettime(1, bytes);
        v.setBigUint64(hc + HOSTCALL.arg, ts[0] * 1000000000n + ts[1], true);
        break;
      }
      case ABI.HC_ZERO:
        mem.zero(Number(args[0]), Number(args[1]));
        break;
      case ABI.HC_PROT:
        this.#protect(args[0], args[1], Number(args[2]));
        break;
      default:
        this.#diag(`hermitux: guest kernel reported an impossible state (${kind}/${args[0]})`);
        this.#process!.exit(0, SIG.SIGKILL);
    }
    v.setBigInt64(hc + HOSTCALL.ret, BigInt.asIntN(64, ret), true);
    return true;
  }

  /**
   * HC_PROT: the guest kernel gives [start, start + len) protection `prot`
   * (PROT_*), or PROT_RESET / PROT_UNMAP. Only page-aligned ranges of the
   * mmap area are taken (the guest is untrusted).
   */
  #protect(start: bigint, len: bigint, prot: number): void {
    const lo = Number(start), hi = lo + Number(len);
    const page = ABI.PAGE_SIZE;
    if (lo % page || hi % page || lo < ABI.USER_MIN || hi > this.#userEnd || hi <= lo) return;
    const access = prot & (ABI.PROT_RESET | ABI.PROT_UNMAP) ? "default" : accessOf(prot);
    if (!this.#prot!.apply(lo, hi, access, (prot & ABI.PROT_UNMAP) !== 0)) this.#protFull();
  }

  /** A file mapping's pages past its file's end (the mm module's hook). */
  #pastEnd(start: number, end: number): void {
    if (!this.#prot!.pastEnd(start, end)) return this.#protFull();
    // The guest kernel resets the mapping's entries when it goes.
    const r = this.#regionAt(start);
    if (r) this.#mem!.view.setUint8(r.at + REGION.ptes, 1);
  }

  #protFull(): void {
    if (this.#protWarned) return;
    this.#protWarned = true;
    this.#diag("hermitux: page-table pool used up: further protections are not enforced");
  }

  /** The guest kernel's mapping holding `addr` (mmap, not brk or the stack), if any. */
  #regionAt(addr: number): GuestRegion | undefined {
    for (const r of guestRegions(this.#mem!, this.#kernel!.mm)) {
      if (r.start <= addr && addr < r.end) return r;
    }
  }

  /** Serves the requests running vCPUs posted exitless; returns how many. */
  #pollHostCalls(): number {
    const t = this.#threads!, mem = this.#mem!, v = mem.view;
    let served = 0;
    for (const cpu of t.cpus) {
      if (!cpu.alive || cpu.busy || cpu.parked) continue;
      const hc = cpu.hc ??= physOf(mem, cpu.id, ABI.HOSTCALL_ADDR);
      const seq = v.getUint32(hc + HOSTCALL.seq, true), ack = v.getUint32(hc + HOSTCALL.ack, true);
      if (seq === ack || seq === (~ack >>> 0)) continue;
      let done = false;
      cpu.busy = true;
      try {
        this.#asThread(cpu, () => done = this.#hostCall(true));
      } finally {
        cpu.busy = false;
      }
      // The result is in place before the guest sees its ack.
      v.setUint32(hc + HOSTCALL.ack, done ? seq : ~seq >>> 0, true);
      this.#stats.exitless++;
      served++;
    }
    return served;
  }

  /**
   * Tells running vCPUs whether this thread polls their host-call blocks:
   * on, asleep (they kick it awake, when KVM takes the kick), or off.
   */
  #setPolling(on: boolean, asleep = false): void {
    const state = on ? ABI.POLL_ON : asleep && this.#wakeFd >= 0 ? ABI.POLL_ASLEEP : ABI.POLL_OFF;
    const words = this.#pollWord ??= new Int32Array(
      this.#mem!.bytes.buffer,
      ABI.BOOT_INFO_ADDR + BOOT_INFO.polling,
      2,
    );
    // A sequentially consistent store: a full fence before we look at the
    // blocks again (hostcall.c posts, fences, then reads this word).
    Atomics.store(words, 0, state);
  }

  /**
   * The run loop of the exitless transport: every vCPU runs on a runner
   * thread; this one serves requests posted to the poller, runner exits
   * (doorbells, faults, interrupts) and timers. It polls while calls keep
   * coming and sleeps on the runners' door after POLL_WINDOW_MS without
   * any, when guests ring the doorbell instead.
   */
  #runExitless(): void {
    const p = this.#process!, threads = this.#threads!;
    // Clock reads cost more than a poll: time is looked at every CHECK
    // rounds (~50 µs idle), timers every 64 calls served.
    const CHECK = 1024;
    let idle = 0, served = 0, door = threads.door, recent = true, last = 0, polling = true;
    this.#setPolling(true);
    threads.startMain();
    while (!p.ended && !this.#handoff) {
      if (!polling) {
        // Asleep until a runner exits (a doorbell, a fault) or a timer is due;
        // only a guest's call (not a timer) starts a polling window again.
        const seen = threads.door;
        if (!threads.pending()) {
          const wake = this.#exitlessWake();
          const ms = wake === undefined ? 50 : Math.min(50, Number(wake - monotonicNs()) / 1e6);
          if (ms > 0) threads.waitDoor(seen, ms);
        }
        // A guest's kick: its request is posted, waiting to be found.
        const kicked = this.#wakeFd >= 0 && this.#pollHostCalls() > 0;
        const active = kicked || threads.door !== seen || threads.pending();
        door = threads.door;
        threads.serveWorkers();
        this.#exitlessTimers();
        if (active) {
          this.#setPolling(polling = true);
          recent = true;
          idle = 0;
        }
        continue;
      }
      let work = this.#pollHostCalls();
      const d = threads.door;
      if (d !== door) {
        door = d;
        work += threads.serveWorkers();
      }
      if (work) {
        idle = 0;
        recent = true;
        if ((++served & 63) === 0) this.#exitlessTimers();
        continue;
      }
      if (++idle % CHECK !== 0) continue;
      // Let a runner (or one of Deno's own threads) that shares this core run.
      hostSyscall(NR_SCHED_YIELD);
      threads.pollWatched();
      this.#exitlessTimers();
      const now = performance.now();
      if (recent) {
        recent = false;
        last = now;
      }
      if (p.ended || now - last < POLL_WINDOW_MS) continue;
      // Quiet for a while: stop polling (guests ring the doorbell), then
      // look once more (a request posted as we stopped).
      this.#setPolling(polling = false, true);
      if (this.#pollHostCalls()) this.#setPolling(polling = true);
    }
    this.#setPolling(false);
  }

  /** When the exitless loop must wake for timers and parked deadlines. */
  #exitlessWake(): bigint | undefined {
    let at = this.#wakeNs || undefined;
    const parked = this.#threads!.nextDeadline();
    if (parked !== undefined && (at === undefined || parked < at)) at = parked;
    const retry = this.#sig.retryAt;
    if (retry !== 0n && (at === undefined || retry < at)) at = retry;
    return at;
  }

  /** Fires what is due: guest timers, the run's deadline, parked timeouts, a delivery retry. */
  #exitlessTimers(): void {
    const sig = this.#sig, threads = this.#threads!, main = threads.main;
    const wake = this.#exitlessWake();
    if (wake === undefined) return;
    const now = monotonicNs();
    if (now < wake) return;
    this.#wakeNs = 0n;
    sig.fireTimers(now);
    if (sig.timedOut) {
      this.#process!.exit(0, SIG.SIGKILL);
      return;
    }
    if (threads.nextDeadline() !== undefined) threads.serveWorkers(now);
    const retry = sig.retryAt !== 0n && sig.retryAt <= now;
    if (retry) sig.retryAt = 0n;
    // What fired for the first thread reaches it as for any other: a kick.
    if (main.alive && sig.next()) threads.interrupt(main);
    // A retry: any other thread left with a signal to act on is kicked too.
    if (retry) {
      for (const c of threads.cpus) {
        if (c === main || !c.alive || c.parked || !c.runner) continue;
        if (this.#signalled(c)) threads.interrupt(c);
      }
    }
    sig.armHost(now, true);
  }

  #regs(): DataView {
    const view = this.#runView!;
    if (view.getBigUint64(LAYOUTS.kvm_run.fields.kvm_valid_regs, true) & SYNC_X86_REGS) {
      return new DataView(view.buffer, LAYOUTS.kvm_run.fields["s.regs"], LAYOUTS.kvm_regs.size);
    }
    const regs = new Uint8Array(LAYOUTS.kvm_regs.size);
    this.#vcpu!.getRegs(regs);
    return new DataView(regs.buffer);
  }

  /**
   * A CPU exception: the stub stored to the doorbell with the CPU's frame at
   * rsp (on the IST stack). With a handler for its signal (not blocked), the
   * signal frame goes on the user stack, the CPU frame is rewritten to enter
   * the handler and rsp points at its rip slot, so the stub's iretq goes
   * there. Otherwise (or in the guest kernel) the run ends with a report.
   */
  #exception(vector: number): CrashReport | undefined {
    const mem = this.#mem!, live = this.#regs();
    let frame = Number(live.getBigUint64(regOffset("rsp"), true));
    // The exception stack is per vCPU (percpu.ts).
    const at = (va: number) => physOf(mem, this.#threads?.serving.id ?? 0, va);
    let errorCode = 0;
    if (HAS_ERROR_CODE.has(vector)) {
      errorCode = Number(mem.view.getBigUint64(at(frame), true));
      frame += 8;
    }
    const rip = Number(mem.view.getBigUint64(at(frame), true));
    const rsp = Number(mem.view.getBigUint64(at(frame + 24), true));
    const sregs = new Uint8Array(LAYOUTS.kvm_sregs.size);
    this.#vcpu!.getSregs(sregs);
    const cr2 = Number(new DataView(sregs.buffer).getBigUint64(LAYOUTS.kvm_sregs.fields.cr2, true));
    // With rewriting, page 0 holds the trampoline: to data it is still "not
    // there" (a write faults as on an unmapped page; a read cannot fault).
    if (this.#rewrite && vector === 14 && cr2 < ABI.PAGE_SIZE && !(errorCode & 0x10)) {
      errorCode &= ~1;
    }
    if (this.#rewrite && this.#badRewrittenCall(vector, errorCode, frame, live)) return undefined;
    if (rip >= ABI.USER_MIN && this.#enterFaultHandler(vector, errorCode, cr2, frame, live)) {
      return undefined;
    }
    const report = crashFromException(vector, errorCode, rip, rsp, cr2, mem, this.#symbolizer());
    if (vector === 14 && this.#prot?.isPastEnd(cr2)) {
      report.signal = SIG.SIGBUS;
      report.description = `bus error: access past the end of a mapped file 0x${cr2.toString(16)}`;
    }
    return report;
  }

  /**
   * A rewritten site (`call *%rax`) run with a number past the trampoline's
   * sled (or an address for rax) faults in page 0 or at rax: finish it as
   * `syscall` would, with ENOSYS, at the call's return address.
   */
  #badRewrittenCall(vector: number, errorCode: number, frame: number, live: DataView): boolean {
    const mem = this.#mem!, v = mem.view;
    const at = (va: number) => physOf(mem, this.#threads?.serving.id ?? 0, va);
    const rip = v.getBigUint64(at(frame), true);
    const rsp = v.getBigUint64(at(frame + 24), true);
    const rax = live.getBigUint64(regOffset("rax"), true);
    const isCall = (addr: bigint) => {
      try {
        return mem.view.getUint16(mem.check(addr, 2), true) === 0xd0ff;
      } catch {
        return false;
      }
    };
    let ret: bigint, sp = rsp;
    if (vector === 13 && isCall(rip)) {
      // A non-canonical rax: the call itself faulted, nothing was pushed.
      ret = rip + 2n;
    } else {
      // int3 past the sled in page 0, or an instruction fetch at rax.
      const pastSled = vector === 3 && rip <= BigInt(ABI.PAGE_SIZE);
      const fetchAtRax = vector === 14 && (errorCode & 0x10) !== 0 && rip === rax;
      if (!pastSled && !fetchAtRax) return false;
      try {
        ret = mem.u64(rsp);
      } catch {
        return false;
      }
      if (!isCall(ret - 2n)) return false;
      sp = rsp + 8n;
    }
    v.setBigUint64(at(frame), ret, true);
    v.setBigUint64(at(frame + 24), sp, true);
    const next = new BigUint64Array(18);
    for (let i = 0; i < 18; i++) next[i] = live.getBigUint64(i * 8, true);
    // No such syscall (numbers past the sled): ENOSYS, named once as usual.
    // The host call's number is 32 bits wide (struct hostcall): the same name either way.
    const nr = Number(BigInt.asUintN(32, rax));
    const r = dispatch(
      this.#registry,
      { nr, args: [0n, 0n, 0n, 0n, 0n, 0n], site: Number(ret - 2n), process: this.#process! },
      this.#diag,
      this.#warned,
    );
    next[R.rax] = BigInt.asUintN(64, r);
    next[R.rsp] = BigInt(frame);
    this.#setRegs(next);
    return true;
  }

  /** Delivers the signal of a user-mode fault if a handler takes it; false if none does. */
  #enterFaultHandler(
    vector: number,
    errorCode: number,
    cr2: number,
    frame: number,
    live: DataView,
  ): boolean {
    const s = this.#sig, mem = this.#mem!, v = mem.view;
    // The CPU frame is on this vCPU's own exception stack.
    const at = (va: number) => physOf(mem, this.#threads?.serving.id ?? 0, va);
    const regs = new BigUint64Array(18);
    for (let i = 0; i < 18; i++) regs[i] = live.getBigUint64(i * 8, true);
    regs[R.rip] = v.getBigUint64(at(frame), true);
    regs[R.rflags] = v.getBigUint64(at(frame + 16), true);
    regs[R.rsp] = v.getBigUint64(at(frame + 24), true);
    const info = this.#faultInfo(vector, errorCode, cr2, regs[R.rip]);
    const act = s.action(info.signo);
    if (act.handler <= 1n || s.mask & bit(info.signo)) return false; // SIG_DFL, SIG_IGN, blocked
    s.force(info);
    const ctx: UserContext = {
      regs,
      err: BigInt(vector === 14 ? errorCode | 4 : errorCode),
      trapno: BigInt(vector),
      cr2: vector === 14 ? BigInt(cr2) : 0n,
    };
    if (!this.#deliver(ctx) || this.#process!.ended) return false;
    v.setBigUint64(at(frame), regs[R.rip], true);
    v.setBigUint64(at(frame + 16), regs[R.rflags], true);
    v.setBigUint64(at(frame + 24), regs[R.rsp], true);
    // Resume at the stub's iretq with the handler's arguments, rsp at the frame's rip.
    const next = regs.slice();
    next[R.rip] = live.getBigUint64(regOffset("rip"), true);
    next[R.rflags] = live.getBigUint64(regOffset("rflags"), true);
    next[R.rsp] = BigInt(frame);
    this.#setRegs(next);
    return true;
  }

  /** The siginfo Linux gives for exception `vector` in user mode. */
  #faultInfo(vector: number, errorCode: number, cr2: number, rip: bigint): SigInfo {
    const signo = vectorSignal(vector);
    switch (vector) {
      case 0:
        return { signo, code: SI.FPE_INTDIV, addr: rip };
      case 1:
        return { signo, code: SI.TRAP_TRACE, addr: rip };
      case 6:
        return { signo, code: SI.ILL_ILLOPN, addr: rip };
      case 14:
        // Past a mapped file's end: SIGBUS. In a mapping: no access (its
        // entry may be not present, for PROT_NONE). Elsewhere: not mapped.
        if (this.#prot?.isPastEnd(cr2)) {
          return { signo: SIG.SIGBUS, code: SI.BUS_ADRERR, addr: BigInt(cr2) };
        }
        return {
          signo,
          code: errorCode & 1 || this.#regionAt(cr2) ? SI.SEGV_ACCERR : SI.SEGV_MAPERR,
          addr: BigInt(cr2),
        };
      case 17:
        return { signo, code: SI.BUS_ADRALN, addr: 0n };
      case 16:
      case 19: {
        this.#vcpu!.getXsave(this.#xsave);
        const x = new DataView(this.#xsave.buffer);
        const err = vector === 19
          ? ~(x.getUint32(24, true) >> 7) & x.getUint32(24, true)
          : x.getUint16(2, true) & ~x.getUint16(0, true);
        const code = err & 0x041
          ? SI.FPE_FLTINV
          : err & 0x004
          ? SI.FPE_FLTDIV
          : err & 0x008
          ? SI.FPE_FLTOVF
          : err & 0x012
          ? SI.FPE_FLTUND
          : err & 0x020
          ? SI.FPE_FLTRES
          : 0;
        return { signo, code, addr: rip };
      }
    }
    return { signo, code: SI.KERNEL, addr: 0n };
  }

  /**
   * The program, the interpreter and every library the guest mapped (read
   * through the mounts again, and parsed, only now: for a crash report).
   */
  #symbolizer(): Symbolizer {
    const out: LoadedObject[] = this.#objects.map((o, i) => ({
      elf: o.elf,
      base: o.base,
      name: i ? o.path.slice(o.path.lastIndexOf("/") + 1) : undefined,
    }));
    const p = this.#process;
    if (!p) return { objects: out };
    const seen = new Set<string>(), files = new Map<string, ElfFile | undefined>();
    const read = (path: string) => {
      if (!files.has(path)) {
        try {
          files.set(path, readGuestElf(p.mounts, path, "/").elf);
        } catch {
          files.set(path, undefined); // not an ELF file we can read: no symbols from it
        }
      }
      return files.get(path);
    };
    for (const r of guestRegions(this.#mem!, this.#kernel!.mm)) {
      if (!this.#mem!.view.getUint8(r.at + REGION.file)) continue;
      const f = fileAt(fileMappings(p), r.start);
      const elf = f?.path ? read(f.path) : undefined;
      if (!f?.path || !elf) continue;
      // The segment this mapping shows gives the load bias.
      const offset = f.offset + r.start - f.start;
      const seg = elf.segments.find((s) =>
        s.type === PT_LOAD && offset >= (s.offset & ~0xfff) && offset < s.offset + s.filesz
      );
      if (!seg) continue;
      const base = r.start + (seg.offset & ~0xfff) - offset - (seg.vaddr & ~0xfff);
      if (seen.has(`${f.path}@${base}`)) continue;
      seen.add(`${f.path}@${base}`);
      out.push({ elf, base, name: f.path.slice(f.path.lastIndexOf("/") + 1) });
    }
    return { objects: out };
  }

  #internal(description: string): CrashReport {
    const regs = this.#regs();
    const rip = Number(regs.getBigUint64(regOffset("rip"), true));
    return {
      signal: SIG.SIGKILL,
      description: `hermitux internal: ${description}`,
      rip,
      rsp: Number(regs.getBigUint64(regOffset("rsp"), true)),
      symbol: symbolize(this.#symbolizer(), rip),
      backtrace: [],
    };
  }

  /**
   * Frees the vCPUs, the VM, the KVM fd and guest memory (kept, cleared,
   * for the next VM: {@linkcode GuestMemory.release}). The VM fd's close,
   * where KVM tears the VM down, runs on a worker thread; `await using`
   * waits for it. Safe to call twice.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#timerId !== undefined) hostSyscall(NR_TIMER_DELETE, this.#timerId);
    this.#threads?.stopAll();
    // A runner still running (stuck past stopAll's wait) may write it yet.
    const done = this.#threads?.runnersDone() ?? true;
    if (done) closeEventfd(this.#wakeFd);
    this.#threads?.dispose();
    this.#process?.fds.closeAll();
    this.#mounts?.close();
    if (this.#run) libc().munmap(this.#run, BigInt(this.#runSize));
    for (const run of this.#runs) libc().munmap(run, BigInt(this.#runSize));
    for (const cpu of this.#threads?.cpus.slice(1) ?? []) cpu.vcpu.close();
    this.#vcpu?.close();
    // KVM's teardown of the VM waits for grace periods: not on this path.
    if (this.#vm) this.#teardown = this.#vm.closeInBackground();
    this.#mem?.release(done, this.#teardown);
    this.#kvm.close();
  }

  /** Same as {@linkcode Vm.dispose}. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * {@linkcode Vm.dispose}, then waits until KVM has torn the VM down and
   * its last fd is closed (dispose leaves that to a worker thread).
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
    await this.#teardown;
  }
}

/** Boots `options.path`, runs it to the end and frees the VM. */
export async function boot(options: BootOptions): Promise<RunResult> {
  using vm = await Vm.create(options);
  return vm.run();
}
