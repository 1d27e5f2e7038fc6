/**
 * fork, vfork and the child vCPU of a thread clone. A forked child is a new
 * machine with a copy of the pages its parent touched (the cost that
 * dominates: 2-6 ms of copying besides 1-9 ms of VM and vCPU creation on
 * kvm_pvm, docs/PROCESSES.md); every child, process or thread, starts at
 * the guest kernel's syscall return path on its parent's frame with rax 0.
 * @module
 */
import { ABI, BOOT_INFO, PERCPU, REGION } from "../kernel/abi.ts";
import { libc, OsError } from "../kvm/libc.ts";
import { bufferAddress, hostSyscall } from "../syscalls/host.ts";
import { guestRegions } from "./program.ts";
import type { VcpuFd } from "../kvm/ioctls.ts";
import { guestCpl } from "../kvm/platform.ts";
import { LAYOUTS, regOffset } from "../kvm/structs.ts";
import { mapTrampoline } from "../loader/paging.ts";
import { onExecMapping, onPastEnd } from "../syscalls/mm.ts";
import { inheritSched } from "../syscalls/sched.ts";
import { MSR, setupVcpu } from "./cpu.ts";
import type { GuestMemory } from "./memory.ts";
import { adoptCpuPages, buildCpuTables, physOf } from "./percpu.ts";
import type { Cpu } from "./threads.ts";
import { CLONE, type CloneSpec, WouldBlock } from "../syscalls/thread.ts";
import { R } from "./sigframe.ts";
import {
  cpuBlocks,
  createMachine,
  INHERITED,
  makeProcess,
  pdCopies,
  poolSpec,
  startThreads,
} from "./setup.ts";
import { patchMapping } from "./rewrite.ts";
import { pastEnd } from "./hostcall.ts";
import { SYSCALL_FRAME, SYSCALL_FRAME_ADDR } from "./deliver.ts";
import { Guest } from "./guest.ts";
import { canLend, lend, type Loan, startOnLoan, takeBack } from "./loan.ts";
import { liveSregs } from "./machine.ts";
import { E, SyscallError } from "../syscalls/errno.ts";
import { monotonicNs } from "../syscalls/signal.ts";

const NR_MEMFD_CREATE = 319, NR_FTRUNCATE = 77, NR_PWRITE64 = 18, NR_CLOSE = 3, MFD_CLOEXEC = 1;

/**
 * fork(2) from the thread being served: a new VM for child `pid` with a
 * copy of this one's memory (the pages it has touched), that thread as
 * its only one (its registers and FPU state, rax 0, clone's stack and TLS
 * if given), the fds (sharing their open file descriptions), cwd, mounts,
 * signal dispositions and mask, and no pending signals. It starts when
 * the process table schedules it.
 * @internal
 */
export function forkGuest(g: Guest, pid: number, spec: CloneSpec): Guest {
  const child = new Guest(g.options, g.table, g);
  const cpu = g.threads!.serving;
  // A vfork child runs on its parent's machine where it can (loan.ts).
  const loan = spec.flags & CLONE.VFORK && canLend(g, cpu) ? lend(g, cpu) : undefined;
  try {
    forkFrom(child, g, cpu, pid, spec, loan);
  } catch (e) {
    if (loan) {
      child.loan = loan;
      g.lentTo = child;
      takeBack(child);
    }
    child.dispose();
    throw e;
  }
  return child;
}

/** Makes `g` the fork child `pid` of `parent`'s thread `cpu` (see forkGuest), on `loan` if given. */
function forkFrom(
  g: Guest,
  parent: Guest,
  cpu: Cpu,
  pid: number,
  spec: CloneSpec,
  loan?: Loan,
): void {
  const from = parent.process!;
  g.features = parent.features;
  g.pid = pid;
  g.ppid = parent.pid;
  g.kernel = parent.kernel;
  g.elf = parent.elf;
  g.base = parent.base;
  g.objects = parent.objects;
  g.sites = parent.sites;
  g.libSites = parent.libSites;
  g.codeFiles = parent.codeFiles;
  g.warned = parent.warned; // an unsupported syscall is named once per run
  g.exitless = false;
  g.scheduled = true;
  g.mounts = parent.mounts!.share();
  g.userEnd = parent.userEnd;
  g.cr3 = parent.cr3;
  let mem: GuestMemory;
  let xsave: { buf: Uint8Array; ready: () => void } | undefined;
  if (loan) {
    // The parent's machine, memory and vCPU 0 as they are (loan.ts).
    g.loan = loan;
    parent.lentTo = g;
    g.machine = parent.machine;
    g.vcpu = cpu.vcpu;
    g.runView = cpu.runView;
    mem = g.mem = parent.mem!;
  } else {
    // The parent's FPU state, read by its runner while the memory is copied
    // (a round trip to that thread is a cross-CPU wake-up each way here).
    const buf = new Uint8Array(LAYOUTS.kvm_xsave.size);
    xsave = { buf, ready: cpu.vcpu.getXsaveBegun(buf) };
    mem = createMachine(g, parent.mem!.size, true);
    // Into RAM that reads as zero (new, or cleared while kept), zero pages need no write.
    const stale = g.machine!.reused && !g.machine!.clean;
    mem.copyFrom(parent.mem!, 0, mem.size, stale, !stale);
    // The address space above RAM: the same mappings, the pool's chunks copied.
    const high = parent.mem!.high;
    if (high) {
      mem.high = high.cloneFor(mem, poolSpec(g, mem), cpuBlocks(g, mem));
      if (high.used) mem.high.copyPool(parent.mem!);
    }
    // The parent held the mm lock for the copy (lockMm); the child's is free.
    Atomics.store(mmLock(mem, g.kernel!.mm.lock), 0, 0);
    parent.debugger?.forked(mem); // gdb follows the parent: no int3 in the child
    // MAP_SHARED memory stays shared: the child gets the same host pages.
    shareAnonymous(parent);
    mem.overlays.inherit(parent.mem!.overlays);
    // The thread that forked becomes the child's first.
    adoptCpuPages(mem, cpu.id, parent.mem!);
  }
  const v = mem.view;
  const boot = ABI.BOOT_INFO_ADDR;
  v.setBigUint64(boot + BOOT_INFO.pid, BigInt(pid), true);
  v.setBigUint64(boot + BOOT_INFO.ppid, BigInt(g.ppid), true);
  Atomics.store(new Int32Array(mem.bytes.buffer, boot + BOOT_INFO.polling, 1), 0, ABI.POLL_OFF);
  v.setBigUint64(ABI.PERCPU_ADDR + PERCPU.tid, BigInt(pid), true);
  const ctid = spec.flags & CLONE.CHILD_CLEARTID ? spec.childTid : 0n;
  v.setBigUint64(ABI.PERCPU_ADDR + PERCPU.clear_child_tid, ctid, true);
  v.setBigUint64(SYSCALL_FRAME_ADDR + SYSCALL_FRAME.indexOf(R.rax) * 8, 0n, true);
  if (spec.stack !== 0n) {
    v.setBigUint64(SYSCALL_FRAME_ADDR + SYSCALL_FRAME.indexOf(R.rsp) * 8, spec.stack, true);
  }
  g.prot = loan ? parent.prot : parent.prot!.cloneFor(mem, pdCopies(g, mem));
  makeProcess(g, mem, from.argv, from.exePath, from.cwd);
  const p = g.process!;
  p.fds = from.fds.copy();
  for (const k of [...INHERITED, "comm", "mm.files"]) {
    const val = from.state.get(k);
    // Copies: a child's setrlimit, capset or prctl(PR_SET_NAME) is its own.
    const copy = Array.isArray(val)
      ? [...val]
      : ArrayBuffer.isView(val)
      ? (val as Uint8Array).slice()
      : val;
    if (val !== undefined) p.state.set(k, copy);
  }
  g.sig.altstack = parent.sig.altstack;
  inheritSched(from, cpu.tid, p, pid, true);
  onPastEnd(p, (start, end) => pastEnd(g, start, end));
  if (g.sites) onExecMapping(p, (...a) => patchMapping(g, ...a));
  if (g.rewrite && !loan) mapTrampoline(mem, g.kernel!.zpolineEntry);
  // vCPU 0 resumes the forking thread's syscall frame (rax 0).
  if (loan) startOnLoan(g, loan, spec);
  else startAtSyscallReturn(g, g.vcpu!, 0, g.cr3, cpu, spec, !g.machine!.reused, xsave);
  // The guest's clocks (the vvar page, copied) count from the parent's TSC;
  // a new VM's starts near 0 on hardware KVM. kvm_pvm shows every guest the
  // host's, so there the copy is left out.
  if (!loan && g.stats.platform !== "kvm_pvm") copyTsc(cpu.vcpu, g.vcpu!);
  const main: Cpu = {
    id: 0,
    vcpu: g.vcpu!,
    runAddr: Deno.UnsafePointer.value(g.machine!.run),
    runView: g.runView!,
    tid: pid,
    alive: true,
  };
  startThreads(g, main, true);
  // On a loan the VM's other vCPU ids are the parent's: no threads.
  if (loan) g.threads!.limit = 1;
  const put32 = (m: GuestMemory, addr: bigint) => m.view.setUint32(m.check(addr, 4), pid, true);
  if (spec.flags & CLONE.CHILD_SETTID) put32(mem, spec.childTid);
  if (spec.flags & CLONE.PARENT_SETTID) put32(parent.mem!, spec.parentTid);
}

/**
 * Makes `to`'s TSC `from`'s: the same offset from the host's TSC where
 * KVM says it (exact). Else `from`'s value is read and written, which
 * leaves `to` behind by the time between (a round trip to `from`'s
 * runner): under the emulated SVM of the hardware-KVM tests a forked
 * child's clock then read earlier than its parent's before the fork, in
 * ~1 run of 4.
 */
function copyTsc(from: VcpuFd, to: VcpuFd): void {
  const offset = from.tscOffset();
  if (offset !== undefined && to.setTscOffset(offset)) return;
  to.setMsrs([[MSR.TSC, from.getMsrs([MSR.TSC])[0]]]);
}

/**
 * Sets vCPU `vcpu` up to leave the guest kernel through its syscall
 * return path (the frame at SYSCALL_FRAME_ADDR in its own pages), with
 * the FPU state and FS/GS bases of thread `from`, whose call is being
 * served (clone's TLS instead, if it set one); `begun`: that FPU state,
 * being read already (VcpuFd.getXsaveBegun).
 */
export function startAtSyscallReturn(
  g: Guest,
  vcpu: VcpuFd,
  id: number,
  cr3: bigint,
  from: Cpu,
  spec: CloneSpec,
  fresh: boolean,
  begun?: { buf: Uint8Array; ready: () => void },
): void {
  const kernel = g.kernel!;
  // Read first: `from` may be `vcpu` itself (a vfork child on its parent's machine).
  const sregs = liveSregs(from.vcpu, from.runView);
  const xsave = begun?.buf ?? new Uint8Array(LAYOUTS.kvm_xsave.size);
  if (begun) begun.ready();
  else from.vcpu.getXsave(xsave);
  setupVcpu(vcpu, id, cr3, kernel, g.features!, guestCpl(g.stats.platform), fresh);
  const sf = LAYOUTS.kvm_sregs.fields, sv = new DataView(sregs.buffer);
  const fs = spec.flags & CLONE.SETTLS ? spec.tls : sv.getBigUint64(sf.fs, true);
  vcpu.setMsrs([[MSR.FS_BASE, fs], [MSR.GS_BASE, sv.getBigUint64(sf.gs, true)]]);
  vcpu.setXsave(xsave);
  const regs = new Uint8Array(LAYOUTS.kvm_regs.size);
  const rv = new DataView(regs.buffer);
  rv.setBigUint64(regOffset("rip"), BigInt(kernel.syscallReturn), true);
  rv.setBigUint64(regOffset("rsp"), BigInt(SYSCALL_FRAME_ADDR), true);
  rv.setBigUint64(regOffset("rflags"), 2n, true);
  vcpu.setRegs(regs);
}

/**
 * Sets `child` up as clone's child of `parent`: its own page tables and
 * per-thread pages, the parent's syscall frame with rax 0 (and the new
 * stack), the parent's FPU state and TLS (or the new TLS), started at the
 * guest kernel's syscall return path.
 */
export function setupChild(g: Guest, child: Cpu, parent: Cpu, spec: CloneSpec, tid: number): void {
  const mem = g.mem!, v = mem.view;
  const cr3 = buildCpuTables(mem, child.id, g.cr3);
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
  startAtSyscallReturn(g, child.vcpu, child.id, cr3, parent, spec, fresh);

  const put32 = (addr: bigint) => v.setUint32(mem.check(addr, 4), tid, true);
  if (spec.flags & CLONE.PARENT_SETTID) put32(spec.parentTid);
  if (spec.flags & CLONE.CHILD_SETTID) put32(spec.childTid);
}

/**
 * Takes the guest kernel's mm lock for fork's copy, as Linux's fork holds
 * the parent's mmap lock. Other threads run on while the memory is copied:
 * one inside mmap, munmap, brk & co. would leave the child a half-changed
 * region list and a lock that nobody there releases (its next mmap would
 * spin for ever). Returns the release, or undefined when another thread
 * holds the lock: then the call has been set to run again shortly (a
 * thread on the main host thread waits here instead, serving the others).
 * @internal
 */
export function lockMm(g: Guest): (() => void) | undefined {
  const word = mmLock(g.mem!, g.kernel!.mm.lock);
  const take = () => Atomics.compareExchange(word, 0, 0, 1) === 0;
  const release = () => void Atomics.store(word, 0, 0);
  const t = g.threads!;
  // Alone, nobody else can hold it: a set word is the program's own doing.
  if (take() || t.count <= 1) return release;
  if (t.polled) throw new WouldBlock();
  if (t.onMain) {
    while (!take()) {
      if (g.process!.ended) throw new SyscallError(E.EINTR);
      g.idle(monotonicNs() + MM_RETRY_NS);
    }
    return release;
  }
  const tid = t.current;
  t.park(monotonicNs() + MM_RETRY_NS, () => t.restart(tid), () => t.restart(tid));
  return undefined;
}

/** How long fork waits before it looks at a held mm lock again. */
const MM_RETRY_NS = 200_000n;

/** The mm lock's word in `mem` (at a kernel image address, inside guest RAM). */
function mmLock(mem: GuestMemory, at: number): Int32Array {
  if (at < 0 || at + 4 > mem.size || at % 4) throw new Error("mm lock outside guest memory");
  return new Int32Array(mem.bytes.buffer, mem.bytes.byteOffset + at, 1);
}

/**
 * vfork: the calling thread waits until the child has called execve or
 * ended ({@linkcode releaseVfork}); other threads run on. Throws
 * WouldBlock for a call that came exitless (before anything is done).
 * @internal
 */
export function holdForVfork(g: Guest): void {
  const t = g.threads!;
  if (t.polled) throw new WouldBlock();
  g.vforkWait = true;
  if (t.onMain) {
    // vCPU 0 on this thread: it moves to a runner, started at the release.
    g.held = true;
    return;
  }
  t.park(0x7fffffffffffffffn, () => {}, () => {});
}

/**
 * The vfork child `child` (tid `tid` of this process waited for it) has
 * called execve or ended: a child that ran on this machine gives it back
 * (loan.ts); else what it wrote to user memory, which on Linux was this
 * process's own, is copied back (the parent's only thread was stopped).
 * The waiting thread goes on with the child's pid.
 * @internal
 */
export function releaseVfork(g: Guest, child: Guest, tid: number, pid: number): void {
  const threads = g.threads!;
  g.vforkWait = false;
  if (child.loan) {
    takeBack(child); // it ran in this memory: nothing to copy
  } else if (threads.count === 1) {
    g.mem!.copyFrom(child.mem!, ABI.USER_MIN, g.machine!.stackTop);
    // Sites it rewrote (--rewrite=stub) jump to stubs it wrote: those too.
    if (g.stubs) g.mem!.copyFrom(child.mem!, ABI.STUB_ADDR, ABI.STUB_END);
    // Above RAM: its mappings and pages, and the top tables that reach them.
    const high = child.mem!.high;
    if (high?.used) {
      g.mem!.high?.adopt(high, child.mem!);
      g.mem!.copyFrom(child.mem!, ABI.PT_ADDR, ABI.PT_ADDR + 2 * ABI.PAGE_SIZE);
    }
    g.debugger?.rearm(g.mem!); // the child's copy had gdb's breakpoints taken out
  }
  if (g.held) {
    g.held = false;
    if (threads.main.alive && !g.process!.ended) threads.startMain();
    return;
  }
  threads.resume(tid, BigInt(pid));
}

/**
 * Makes `g`'s anonymous MAP_SHARED mappings (struct region.shared 2) host
 * memory a child can map too: each becomes a memfd holding what it holds
 * now (its resident pages), laid over the same RAM (shared.ts). Done at
 * the first fork that needs it; until then such a mapping is plain RAM.
 * Another thread of `g` writing the mapping meanwhile may lose that write.
 */
function shareAnonymous(g: Guest): void {
  const mem = g.mem!;
  for (const r of guestRegions(mem, g.kernel!.mm)) {
    if (mem.view.getUint8(r.at + REGION.shared) !== 2) continue;
    if (mem.overlays.list.some((o) => o.start < r.end && o.end > r.start)) continue;
    const len = r.end - r.start;
    const name = new TextEncoder().encode("hermitux-shared\0");
    const fd = Number(hostSyscall(NR_MEMFD_CREATE, bufferAddress(name), MFD_CLOEXEC));
    if (fd < 0) throw new OsError("memfd_create", -fd);
    try {
      const r2 = hostSyscall(NR_FTRUNCATE, fd, len);
      if (r2 < 0n) throw new OsError("ftruncate", Number(-r2));
      // Only what was touched: an untouched page reads as zero in the memfd too.
      const pages = new Uint8Array(len / 4096);
      libc().mincore(mem.host + BigInt(r.start), BigInt(len), pages);
      for (let i = 0; i < pages.length;) {
        if (!(pages[i] & 1)) {
          i++;
          continue;
        }
        let j = i + 1;
        while (j < pages.length && pages[j] & 1) j++;
        const at = r.start + i * 4096, n = (j - i) * 4096;
        for (let done = 0; done < n;) {
          const w = hostSyscall(
            NR_PWRITE64,
            fd,
            mem.host + BigInt(at + done),
            n - done,
            at - r.start + done,
          );
          if (w <= 0n) throw new OsError("pwrite", Number(-w));
          done += Number(w);
        }
        i = j;
      }
      mem.overlays.add(r.start, len, fd, 0, true);
    } finally {
      hostSyscall(NR_CLOSE, fd);
    }
  }
}
