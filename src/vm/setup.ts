/**
 * Setting up one image of a guest process, at boot and at execve: a new
 * machine (machine.ts), the guest kernel and the program (and its
 * interpreter) loaded, the initial stack, the boot information the guest
 * kernel reads, the process state (signals, fds, mounts) and vCPU 0 as the
 * first thread. An execve builds the new image beside the old one, so a
 * failure (ENOENT, ENOEXEC, no memory) leaves the caller running as on Linux.
 * @module
 */
import { execTarget } from "../syscalls/procfs.ts";
import { openStdio } from "./stdio.ts";
import { ABI, BOOT_INFO, BOOT_MAGIC, PERCPU } from "../kernel/abi.ts";
import { type kernelImage, vdsoStart } from "../kernel/image.ts";
import { closeEventfd, makeEventfd } from "./wake.ts";

import { OsError } from "../kvm/libc.ts";
import { guestCpl } from "../kvm/platform.ts";

import { ElfError, type ElfFile, parseElf } from "../loader/elf.ts";
import { loadExecutable, loadInterpreter } from "../loader/load.ts";
import { buildPageTables, mapTrampoline } from "../loader/paging.ts";
import { AT, buildStack } from "../loader/stack.ts";
import type { Process } from "../syscalls/registry.ts";
import { fileMappings, onExecMapping, onPastEnd } from "../syscalls/mm.ts";
import { FdTable, OpenFile } from "../syscalls/fdtable.ts";
import { MountTable } from "../vfs/mounts.ts";
import { E, SyscallError } from "../syscalls/errno.ts";
import { type CpuFeatures, cpuFeatures, setupVcpu, writeSystemTables } from "./cpu.ts";
import type { GuestMemory } from "./memory.ts";
import { blockOf, pdCopyOf, physOf } from "./percpu.ts";
import { HighMemory, type PoolSpec } from "./high.ts";
import { attachProcesses } from "../syscalls/procs.ts";
import { PageProtections } from "./protect.ts";
import { type Cpu, Threads, type ThreadVm } from "./threads.ts";
import { attachThreads } from "../syscalls/thread.ts";
import { DOORBELL_ONLY, POSTED_WAIT_US } from "./exitless.ts";
import { attachSignals, bit, SIG_IGN, SignalState } from "../syscalls/signal.ts";
import { inheritSched } from "../syscalls/sched.ts";
import type { BootOptions } from "./options.ts";
import { hostAuxv, hostUtsname, ignoreAlarms } from "./hostinfo.ts";
import {
  type MappedObject,
  procMaps,
  readExecutable,
  readGuestElf,
  readInterpreter,
  shebang,
} from "./program.ts";
import { setupChild } from "./fork.ts";
import { patchMapping, patchSites } from "./rewrite.ts";
import { pastEnd, serveExit } from "./hostcall.ts";
import { afterResume, afterSyscall } from "./deliver.ts";
import { Guest } from "./guest.ts";
import { Machine, SMALL_RAM, takeSpareMachine } from "./machine.ts";

/**
 * 1 GiB. RAM is also the address space a program may reserve (guest
 * virtual addresses are guest-physical ones), and `--mem 2G` gives more
 * (node's second isolate needs another 128 MiB code range), but small
 * programs start slower with it: a dynamic C hello took 12–20 ms instead
 * of 9–10 in `bench:startup` (python3 the same), likely KVM's per-memslot
 * arrays, which grow with RAM.
 */
// Facts about the host that do not change while the process lives.
let features: CpuFeatures | undefined;

const DEFAULT_MEMORY = 1024 * 1024 * 1024;

/**
 * The main thread's stack: Linux's default 8 MiB, less in a small VM (an
 * eighth of RAM, at least 2 MiB), so that a static hello fits in 12 MiB.
 */
export function stackSize(memory: number): number {
  const huge = 2 * 1024 * 1024;
  return Math.min(8 * 1024 * 1024, Math.max(huge, Math.floor(memory / 8 / huge) * huge));
}
/**
 * Not mapped below the stack (Linux keeps a 1 MiB stack_guard_gap; one
 * 2 MiB page here splits no huge page): an overflow faults there, a
 * SIGSEGV a handler on sigaltstack can take, instead of running on into
 * the mappings below (ld.so sat right under the stack).
 */
const STACK_GUARD = 2 * 1024 * 1024;
/** The guard's size: 64 KiB in a small VM (machine.ts's SMALL_RAM), where 2 MiB is a quarter of it. */
const stackGuard = (memory: number) => memory < SMALL_RAM ? 0x10000 : STACK_GUARD;

export class GuestProcess implements Process {
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
export interface ProcessInit {
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
export const INHERITED = ["rlimits", "umask", "caps"];

/**
 * execve's new image of this VM's process: `path` found through the
 * mounts (a `#!` script runs its interpreter), its own VM set up with
 * `argv` and `envp`, the fds not marked close-on-exec, the cwd, ignored
 * signals and the caller's mask. Throws SyscallError with execve's errno
 * when it cannot be (the caller goes on); nothing of this VM changes.
 * @internal
 */
export function execImage(
  g: Guest,
  path: string,
  argv: string[],
  envp: string[],
  scheduled: boolean,
): Guest {
  const p = g.process!, mounts = g.mounts!;
  path = execTarget(p, path); // /proc is ours, not a host mount's
  let { bytes, guestPath } = readExecutable(mounts, path, p.cwd);
  let options: BootOptions = { ...g.options, path, args: argv.slice(1), argv0: undefined };
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
  const s = g.sig;
  const ignored: number[] = [];
  for (let n = 1; n <= 64; n++) if (s.action(n).handler === SIG_IGN) ignored.push(n);
  const init: ProcessInit = {
    pid: g.pid,
    ppid: g.ppid,
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
  const vm = new Guest({ ...options, path: guestPath }, g.table, g);
  vm.sites = g.sites;
  vm.libSites = g.libSites;
  vm.codeFiles = g.codeFiles;
  vm.warned = g.warned; // an unsupported syscall is named once per run
  try {
    setupImage(vm, vm.options, elf, bytes, g.kernel!, init);
  } catch (e) {
    vm.dispose();
    if (e instanceof ElfError) throw new SyscallError(E.ENOEXEC);
    if (e instanceof OsError) throw new SyscallError(E.ENOMEM);
    throw e;
  }
  attachProcesses(vm.process!, g.table.hostFor(g.table.get(g.pid)!));
  inheritSched(g.process!, g.threads!.serving.tid, vm.process!, g.pid, false);
  // Pending signals stay pending across execve (the caller's own and the
  // process's; other threads' own end with them), as on Linux.
  for (let sig = 1; sig <= 64; sig++) {
    for (let n = 0; g.sig.pending & bit(sig) && n < 1024; n++) vm.sig.raise(g.sig.take(sig));
  }
  return vm;
}

export function setupImage(
  g: Guest,
  options: BootOptions,
  elf: ElfFile,
  bytes: Uint8Array,
  kernel: Awaited<ReturnType<typeof kernelImage>>,
  init?: ProcessInit,
): void {
  const size = options.memory ?? DEFAULT_MEMORY;
  g.kernel = kernel;
  const pid = g.pid = init?.pid ?? g.table.rootPid;
  g.ppid = init?.ppid ?? Deno.ppid;
  if (init?.scheduled) {
    g.exitless = false;
    g.scheduled = true;
  }
  g.elf = elf;
  const mem = createMachine(g, size);
  const stackTop = g.machine!.stackTop;
  const poolEnd = size; // the page-table pool: [stackTop, RAM's end)
  mem.bytes.set(kernel.bytes, ABI.KERNEL_ADDR);
  g.mounts = init?.mounts ?? g.mounts ?? new MountTable(options.mounts ?? []);
  mem.userEnd = stackTop;
  const stack = stackSize(size);
  let mmapMax = stackTop - stack - stackGuard(size);
  const image = loadExecutable(elf, bytes, mem, mmapMax);
  g.base = image.base;
  const objects: MappedObject[] = g.objects = [
    { elf, base: image.base, path: options.path, bytes },
  ];
  let interpBase = 0, entry = image.entry;
  let interpObj: { elf: ElfFile; bytes: Uint8Array } | undefined;
  if (elf.interpreter !== undefined) {
    // execve of a program whose interpreter is missing: ENOENT, the caller goes on.
    const interp = init
      ? readGuestElf(g.mounts, elf.interpreter, init.cwd)
      : readInterpreter(g.mounts, elf.interpreter, options.cwd ?? "/", elf.path);
    interpObj = interp;
    const placed = loadInterpreter(interp.elf, interp.bytes, mem, image.brkStart, mmapMax);
    interpBase = placed.base;
    entry = placed.entry;
    // One guard page, then the mmap area grows down from below the loader.
    mmapMax = placed.start - ABI.PAGE_SIZE;
    objects.push({
      elf: interp.elf,
      base: placed.base,
      path: interp.guestPath,
      bytes: interp.bytes,
    });
  }
  if (g.sites) {
    patchSites(g, mem, bytes, elf, image.base);
    if (interpObj) patchSites(g, mem, interpObj.bytes, interpObj.elf, interpBase);
  }
  g.stats.loadMs = performance.now() - g.t0;

  // The vDSO, at the top of the stack's range (docs/VDSO.md).
  const vdso = vdsoStart(stackTop, kernel);
  mem.bytes.set(kernel.vdso, vdso);
  const argv = init?.argv ?? [options.argv0 ?? options.path, ...(options.args ?? [])];
  const env = init?.envp ?? Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`);
  g.features = features ??= cpuFeatures(g.machine!.kvm, g.stats.platform);
  const uid = Deno.uid() ?? 0, gid = Deno.gid() ?? 0;
  const sp = buildStack(mem.bytes, vdso, {
    argv,
    envp: env,
    execfn: options.path,
    random: crypto.getRandomValues(new Uint8Array(16)),
    auxv: [
      [AT.SYSINFO_EHDR, vdso],
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

  makeProcess(g, mem, argv, options.path, init?.cwd ?? options.cwd ?? "/");
  const proc = g.process!, vcpu = g.vcpu!;
  if (g.sites) onExecMapping(proc, (...a) => patchMapping(g, ...a));
  if (init) {
    proc.fds = init.fds;
    for (const [k, v] of init.state) proc.state.set(k, v);
    for (const n of init.ignored) {
      g.sig.setAction(n, { handler: SIG_IGN, flags: 0n, restorer: 0n, mask: 0n });
    }
    mem.view.setBigUint64(ABI.PERCPU_ADDR + PERCPU.sigmask, init.mask, true);
  } else {
    const stdio = openStdio(options);
    g.table.stdio = stdio;
    const fds = proc.fds;
    stdio.fds.forEach((hostFd, fd) =>
      fds.set(fd, new OpenFile(hostFd, { owned: stdio.owned[fd] }))
    );
  }

  writeBootInfo(g, mem, {
    entry,
    sp,
    brk: image.brkStart,
    mmapMax,
    tscKhz: g.machine!.tscKhz,
    uid,
    gid,
  });
  const codeEnd = ABI.KERNEL_ADDR +
    Math.ceil(kernel.bytes.length / ABI.PAGE_SIZE) * ABI.PAGE_SIZE;
  const cr3 = g.cr3 = buildPageTables(mem, codeEnd, g.stubs);
  g.prot = new PageProtections(
    mem,
    cr3,
    [stackTop, poolEnd],
    pdCopies(g, mem),
  );
  g.userEnd = mmapMax;
  mem.high = new HighMemory(mem, cr3, poolSpec(g, mem), highRange(mem), cpuBlocks(g, mem));
  mem.view.setBigUint64(ABI.BOOT_INFO_ADDR + BOOT_INFO.high_min, BigInt(mem.high.min), true);
  mem.view.setBigUint64(ABI.BOOT_INFO_ADDR + BOOT_INFO.high_max, BigInt(mem.high.max), true);
  g.prot.apply(stackTop - stack - stackGuard(size), stackTop - stack, "none");
  onPastEnd(proc, (start, end) => pastEnd(g, start, end));
  if (g.rewrite) mapTrampoline(mem, kernel.zpolineEntry);
  writeSystemTables(mem, kernel);
  const reused = g.machine!.reused;
  setupVcpu(vcpu, 0, cr3, kernel, features, guestCpl(g.stats.platform), !reused);
  // A recycled vCPU starts with a clean FPU too (setupVcpu sets x87 and SSE only).
  if (reused) vcpu.setXsave(g.initXsave);
  g.kernel = kernel;
  mem.view.setBigUint64(ABI.PERCPU_ADDR + PERCPU.tid, BigInt(pid), true);
  const main: Cpu = {
    id: 0,
    vcpu,
    runAddr: Deno.UnsafePointer.value(g.machine!.run),
    runView: g.runView!,
    tid: pid,
    alive: true,
  };
  ignoreAlarms();
  startThreads(g, main, g.exitless || g.scheduled);
}

/**
 * Before the exitless poller first sleeps: guests will wake it with a
 * store KVM turns into an eventfd write, no exit (one costs ~100 µs on
 * kvm_pvm, the kick ~30 µs). Made then, not at boot: a VM with an
 * ioeventfd takes 7-12 ms more to tear down and is not kept for the next
 * boot, and a short program never lets the poller sleep.
 */
export function armKick(g: Guest): void {
  if (g.kickArmed) return;
  g.kickArmed = true;
  const fd = makeEventfd();
  const kick = BigInt(ABI.DOORBELL_GPA + ABI.KICK_DOORBELL_OFF);
  if (fd < 0 || !g.machine!.vm.ioeventfd(kick, 8, fd)) return closeEventfd(fd);
  g.wakeFd = fd;
  g.threads!.useWakeFd(fd);
}

/**
 * The machine for `g`: a KVM VM with `size` bytes of RAM, vCPU 0 its
 * current vCPU. A process among several (a fork child, an execve image)
 * may get a recycled one; `forFork`: its RAM is left for copyFrom to
 * overwrite, else it is zeroed.
 */
/** The top of Linux's user address space on x86-64 (TASK_SIZE minus a page). */
const USER_TOP = 0x7fff_ffff_f000;

/** The address space above RAM: from the first GiB past it to Linux's top. */
export function highRange(mem: GuestMemory): [number, number] {
  const gib = 0x40000000;
  return [Math.ceil(mem.size / gib) * gib, USER_TOP];
}

/** The pool behind the address space above RAM, on `g`'s machine. */
export function poolSpec(g: Guest, mem: GuestMemory): PoolSpec {
  return { base: mem.poolBase, size: mem.poolSize, addSlot: () => g.machine!.addPoolSlot() };
}

/** The ids of `g`'s vCPUs other than 0, each with a block of its own (percpu.ts). */
const otherCpus = (g: Guest): number[] =>
  g.threads?.cpus.filter((c) => c.id > 0).map((c) => c.id) ?? [];

/** The blocks of `g`'s vCPUs other than 0 (their copies of the top tables). */
export function cpuBlocks(g: Guest, mem: GuestMemory): () => number[] {
  return () => otherCpus(g).map((id) => blockOf(mem, id));
}

/** Where `g`'s vCPUs other than 0 keep their copies of the first GiB's page directory. */
export function pdCopies(g: Guest, mem: GuestMemory): () => number[] {
  return () => otherCpus(g).map((id) => pdCopyOf(mem, id));
}

export function createMachine(g: Guest, size: number, forFork = false): GuestMemory {
  // A machine the run's ended processes left, when there is one (machine.ts).
  const kept = g.scheduled ? g.table.machines.take(size, !forFork) : undefined;
  // Else the one the last run of this process left (machine.ts), else a new one.
  const m = g.machine = kept ?? takeSpareMachine(size, g.options.kvmDevice) ??
    Machine.create(size, g.options.kvmDevice);
  g.vcpu = m.vcpu;
  g.runView = m.runView;
  return g.mem = m.mem;
}

/**
 * The process half of a VM (its pid, argv, cwd, memory map and signal
 * state) for RAM `mem`; #stackTop, #objects and #mounts are set.
 */
export function makeProcess(
  g: Guest,
  mem: GuestMemory,
  argv: readonly string[],
  exePath: string,
  cwd: string,
): void {
  const pid = g.pid, objects = g.objects, stackTop = g.machine!.stackTop;
  const kernel = g.kernel!;
  g.process = new GuestProcess(
    mem,
    pid,
    argv,
    exePath,
    g.mounts!,
    cwd,
    () =>
      procMaps(
        mem,
        kernel.mm,
        objects,
        stackTop - stackSize(mem.size),
        vdsoStart(stackTop, kernel),
        fileMappings(g.process!),
        [
          [ABI.VVAR_ADDR, ABI.VVAR_ADDR + ABI.PAGE_SIZE, "r--p", "[vvar]"],
          [vdsoStart(stackTop, kernel), stackTop, "r-xp", "[vdso]"],
        ],
      ),
  );
  g.sig = new SignalState(mem, {
    maskAddr: ABI.PERCPU_ADDR + PERCPU.sigmask,
    actionsAddr: ABI.SIGACTIONS_ADDR,
    pendingAddr: ABI.PERCPU_ADDR + PERCPU.sigpending,
    userSp: () =>
      mem.view.getBigUint64(
        physOf(mem, g.threads?.serving.id ?? 0, ABI.KSTACK_TOP - 8),
        true,
      ),
    threads: {
      current: () => g.threads?.serving.tid ?? pid,
      maskAddr: (tid) => g.percpuOf(tid, PERCPU.sigmask),
      pendingAddr: (tid) => g.percpuOf(tid, PERCPU.sigpending),
      tids: () => g.threads?.cpus.filter((c) => c.alive).map((c) => c.tid) ?? [pid],
      notify: (tid) => g.notifyThread(tid),
    },
    armTimer: (ns) => g.armHostTimer(ns),
  });
  attachSignals(g.process, g.sig);
  g.sampler = g.table.sampler?.(g);
}

/** The guest's threads, starting with `main` (on a runner of its own with `onRunner`). */
export function startThreads(g: Guest, main: Cpu, onRunner: boolean): void {
  g.threads = new Threads(
    threadVm(g),
    main,
    g.pid,
    () => g.table.allocId(),
    onRunner,
    g.wakeFd,
    g.loan?.cpu.lent,
  );
  attachThreads(g.process!, g.threads);
  g.sig.wakeAt = () => g.threads!.nextDeadline();
  g.sig.idle = (until) => g.idle(until);
  g.sig.ended = () => g.process!.ended !== undefined;
  g.sig.park = (until, timeout, wake) => {
    const t = g.threads!;
    if (t.onMain) return false;
    const tid = t.current, cpu = t.serving;
    // The results are computed as the parked thread (its mask, its signals).
    const as = (f: () => bigint) => {
      let r = BigInt(-E.EINTR);
      g.asThread(cpu, () => r = f());
      t.resume(tid, r);
    };
    t.park(until, () => as(timeout), wake && (() => as(wake)));
    return true;
  };
}

/** What the thread machinery needs from the VM. */
export function threadVm(g: Guest): ThreadVm {
  const mem = g.mem!;
  return {
    vm: g.machine!.vm,
    runSize: g.machine!.runSize,
    mapRun: (vcpu) => g.machine!.mapRun(vcpu),
    setupChild: (child, parent, spec, tid) => setupChild(g, child, parent, spec, tid),
    afterResume: (cpu, ret) => g.asThread(cpu, () => afterResume(g, cpu, ret)),
    restartSyscall: (cpu) => g.asThread(cpu, () => afterSyscall(g, 0n, true, true)),
    serveExit: (cpu) => serveExit(g, cpu),
    setRet: (cpu, ret) => g.setRet(cpu, ret),
    ended: () => g.process!.ended !== undefined,
    signalled: (cpu) => g.signalled(cpu),
    clearTid: (cpu) =>
      mem.view.getBigUint64(physOf(mem, cpu.id, ABI.PERCPU_ADDR + PERCPU.clear_child_tid), true),
  };
}

export function writeBootInfo(
  g: Guest,
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
  put(BOOT_INFO.spin_ticks, BigInt(b.tscKhz) * BigInt(POSTED_WAIT_US) / 1000n);
  put(BOOT_INFO.pid, g.pid);
  put(BOOT_INFO.ppid, g.ppid);
  put(BOOT_INFO.uid, b.uid);
  put(BOOT_INFO.gid, b.gid);
  put(BOOT_INFO.trace, g.trace ? 1 : 0);
  put(
    BOOT_INFO.rewrite,
    g.stubs ? ABI.REWRITE_STUB : g.lazy ? ABI.REWRITE_LAZY : ABI.REWRITE_OFF,
  );
  mem.bytes.set(hostUtsname(g.options.hostname), base + BOOT_INFO.uts);
  writeRoutes(g, mem);
}

/**
 * The boot information's route table: where each syscall goes. Written at
 * boot, and again when an `auto` run turns exitless.
 */
export function writeRoutes(g: Guest, mem: GuestMemory): void {
  const at = ABI.BOOT_INFO_ADDR + BOOT_INFO.route;
  for (let nr = 0; nr < ABI.NR_SYSCALLS; nr++) {
    // An overridden syscall always reaches the host (past the guest
    // kernel's own handler); any may come exitless unless it needs the vCPU.
    const host = g.registry.isOverridden(nr) ? ABI.ROUTE_HOST : ABI.ROUTE_LOCAL;
    const poll = g.exitless && !DOORBELL_ONLY.has(nr) ? ABI.ROUTE_POLL : 0;
    mem.bytes[at + nr] = host | poll;
  }
}
