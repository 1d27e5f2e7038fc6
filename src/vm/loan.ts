/**
 * vfork without a copy: the child runs on its parent's machine (the same
 * KVM VM, RAM and vCPU 0) while the parent's only thread waits, as Linux's
 * vfork child runs in its parent's memory. What is the parent's own and
 * not the address space's is put aside first and put back when the child
 * calls execve or ends ({@linkcode takeBack}):
 *
 * - vCPU 0's registers, segments and FPU state, and its `kvm_run` area
 *   (the sync registers, the exit the parent is being served);
 * - the guest kernel's pages that belong to a process or a thread rather
 *   than to the address space: the exception stack, the boot information
 *   (pid, ppid, routes) with the signal actions after it, the host-call
 *   block, `struct percpu` (tid, mask, FPU scratch) and the kernel stack,
 *   which holds the parent's syscall in progress.
 *
 * The region list, brk and the page tables are the address space's and
 * stay shared, as they are under CLONE_VM: an mmap in the child is the
 * parent's too, and one VM means no second MMU to keep in step. Only a
 * parent whose one thread runs on a runner lends (a run that already has
 * several processes); the first vfork of a run, a multithreaded parent or
 * one under gdb or the profiler copies its memory as before (fork.ts).
 * @module
 */
import { ABI } from "../kernel/abi.ts";
import type { VcpuFd } from "../kvm/ioctls.ts";
import { LAYOUTS, regOffset } from "../kvm/structs.ts";
import { CLONE, type CloneSpec } from "../syscalls/thread.ts";
import { MSR } from "./cpu.ts";
import { SYSCALL_FRAME_ADDR } from "./deliver.ts";
import type { Guest } from "./guest.ts";
import { liveSregs, setRegs, SYNC_X86_REGS } from "./machine.ts";
import type { Cpu } from "./threads.ts";

const F = LAYOUTS.kvm_run.fields;

const KSTACK_LOW = ABI.KSTACK_TOP - ABI.KSTACK_PAGES * ABI.PAGE_SIZE;
/** The parent's own pages, as [start, end): see the module's comment. */
const OWN: readonly (readonly [number, number])[] = [
  [0x4000, 0x8000], // exception stack
  [ABI.BOOT_INFO_ADDR, ABI.VVAR_ADDR], // boot info + sigactions, host-call block, percpu, ELF hints
  [KSTACK_LOW, ABI.KSTACK_TOP],
];

/** What a vfork child on its parent's machine must give back. */
export interface Loan {
  /** The parent, waiting. */
  readonly parent: Guest;
  /** Its thread's vCPU (vCPU 0). */
  readonly cpu: Cpu;
  /** The parent's own pages (OWN), as they were. */
  readonly pages: Uint8Array[];
  /** Its `kvm_run` area, sync registers included. */
  readonly run: Uint8Array;
  /** `kvm_regs`, or empty where KVM keeps them in the sync area (then in `run`). */
  readonly regs: Uint8Array;
  /** `kvm_sregs` (FS and GS bases among them). */
  readonly sregs: Uint8Array;
  /** The FPU state (`kvm_xsave`). */
  readonly xsave: Uint8Array;
  /** How the parent's vCPU ioctls went (through its runner). */
  readonly via: VcpuFd["via"];
  /**
   * "out" while the child runs on it; "back" once given back (takeBack);
   * "orphaned" when the parent ended first: the machine is the child's to free.
   */
  state: "out" | "back" | "orphaned";
}

/** HERMITUX_VFORK=copy: every vfork copies memory (for A/B measurements). */
const copyAlways = (() => {
  try {
    return Deno.env.get("HERMITUX_VFORK") === "copy";
  } catch {
    return false;
  }
})();

/**
 * Whether `parent`'s thread on `cpu` may lend its machine to a vfork child:
 * its only thread, on vCPU 0 and a runner of its own (so it can wait while
 * another runner runs the vCPU), no debugger or profiler watching, no loan
 * of its own under way and none it holds.
 */
export function canLend(parent: Guest, cpu: Cpu): boolean {
  const t = parent.threads!;
  return cpu.id === 0 && cpu.runner !== undefined && t.count === 1 && parent.scheduled &&
    !parent.debugger && !parent.sampler && !parent.loan && !parent.lentTo && !copyAlways;
}

/**
 * Puts aside what `parent`'s thread on `cpu` owns of its machine; the child
 * then takes it over ({@linkcode startOnLoan}). Each vCPU ioctl here goes
 * through the parent's runner thread (kvm_pvm keeps the FPU state with the
 * thread that runs the vCPU), ~0.1 ms a round trip on these hosts: the
 * registers and segments are read from `kvm_run`'s sync area where KVM
 * keeps them there.
 */
export function lend(parent: Guest, cpu: Cpu): Loan {
  const mem = parent.mem!, vcpu = cpu.vcpu;
  const synced = (cpu.runView.getBigUint64(F.kvm_valid_regs, true) & SYNC_X86_REGS) !== 0n;
  const regs = new Uint8Array(synced ? 0 : LAYOUTS.kvm_regs.size);
  const xsave = new Uint8Array(LAYOUTS.kvm_xsave.size);
  if (!synced) vcpu.getRegs(regs);
  const sregs = liveSregs(vcpu, cpu.runView);
  // The child runs on the parent's runner thread (kvm_pvm keeps the FPU
  // state with the thread that runs the vCPU), which reads the parent's
  // FPU state before it first runs the child: no round trip now.
  vcpu.getXsaveLater(xsave);
  cpu.lent = cpu.runner;
  cpu.runner = undefined;
  cpu.ctl = undefined;
  const runSize = parent.machine!.runSize;
  const run = new Uint8Array(runSize);
  run.set(new Uint8Array(cpu.runView.buffer, cpu.runView.byteOffset, runSize));
  return {
    parent,
    cpu,
    pages: OWN.map(([a, b]) => mem.bytes.slice(a, b)),
    run,
    regs,
    sregs,
    xsave,
    via: vcpu.via,
    state: "out",
  };
}

/**
 * The vfork child `child` has called execve or ended: its runner is
 * stopped and let go, and the parent's pages, vCPU state and `kvm_run`
 * area are put back, so that the parent's thread goes on where it waited.
 */
export function takeBack(child: Guest): void {
  const loan = child.loan!;
  if (loan.state !== "out") return;
  loan.state = "back";
  const threads = child.threads;
  if (threads) {
    threads.stopAll();
    if (!threads.runnersDone()) {
      // It cannot be stopped: the machine is not the parent's to run again.
      throw new Error("hermitux: a vfork child's vCPU runner did not stop");
    }
    for (const c of threads.cpus) {
      c.runner?.dispose();
      c.runner = undefined;
    }
  }
  const cpu = loan.cpu, mem = loan.parent.mem!, vcpu = cpu.vcpu;
  // The parent's runner again (a halted one: out of KVM_RUN, its thread idle).
  cpu.runner = cpu.lent;
  cpu.ctl = cpu.lent?.ctl;
  cpu.lent = undefined;
  OWN.forEach(([a], i) => mem.bytes.set(loan.pages[i], a));
  const view = loan.cpu.runView;
  new Uint8Array(view.buffer, view.byteOffset, loan.run.length).set(loan.run);
  vcpu.via = loan.via;
  // Made by the parent's runner before it runs the parent again: no round trip now.
  vcpu.restoreLater(loan.sregs, loan.xsave);
  // KVM loads the registers put back in the sync area at the next KVM_RUN.
  if (loan.regs.length) vcpu.setRegs(loan.regs);
  else view.setBigUint64(F.kvm_dirty_regs, view.getBigUint64(F.kvm_dirty_regs, true) | 1n, true);
  loan.parent.lentTo = undefined;
}

/**
 * Starts the vfork child on the loan at the guest kernel's syscall return
 * path (its frame already says rax 0, and the new stack). The vCPU is the
 * parent's as it was when the parent called: in the guest kernel, with its
 * segments, page tables and FPU state, which are what the child starts
 * with; only clone's TLS (CLONE_SETTLS) is set.
 */
export function startOnLoan(g: Guest, loan: Loan, spec: CloneSpec): void {
  const vcpu = loan.cpu.vcpu;
  const regs = new BigUint64Array(LAYOUTS.kvm_regs.size / 8);
  regs[regOffset("rip") / 8] = BigInt(g.kernel!.syscallReturn);
  regs[regOffset("rsp") / 8] = BigInt(SYSCALL_FRAME_ADDR);
  regs[regOffset("rflags") / 8] = 2n;
  setRegs(vcpu, loan.cpu.runView, regs);
  if (spec.flags & CLONE.SETTLS) vcpu.setMsrs([[MSR.FS_BASE, spec.tls]]);
}

/**
 * At `g`'s dispose: a machine on loan is left to whoever holds it. A vfork
 * child gives it back if it has not, or frees it if its parent ended
 * first; a parent whose child still runs on it leaves it to the child.
 * Returns whether the machine was dealt with here (`done`: every runner
 * of `g` has left).
 */
export function settleLoan(g: Guest, done: boolean): boolean {
  const loan = g.loan, child = g.lentTo;
  if (child?.loan?.state === "out") {
    child.loan.state = "orphaned";
    return true;
  }
  if (!loan) return false;
  if (loan.state === "out") {
    try {
      takeBack(g);
    } catch { /* its runner is stuck: the parent's end frees the machine */ }
    return true;
  }
  if (loan.state === "orphaned") {
    // The runner it borrowed (halted by its threads' stopAll) is no one's now.
    const runner = loan.cpu.lent;
    loan.cpu.lent = undefined;
    if (runner && done && !runner.release()) runner.quit();
    const cpus = loan.parent.threads?.cpus ?? [];
    g.machine?.dispose(done, cpus.slice(1).map((c) => c.vcpu));
  }
  return true;
}
