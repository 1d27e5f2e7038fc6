/**
 * The machine of one guest image, as Firecracker keeps its VM state apart
 * from the run loop: a KVM VM, its RAM (one memory slot), vCPU 0 and the
 * `kvm_run` area of every vCPU. It knows nothing of processes, threads or
 * syscalls; {@linkcode Guest} (guest.ts) runs a process on it.
 * @module
 */
import { type FlushPage, flushPage, freeFlushPage, SlotFlush } from "../runner/slots.ts";
import { CAP, Kvm, type VcpuFd, type VmFd } from "../kvm/ioctls.ts";
import { libc } from "../kvm/libc.ts";
import { LAYOUTS } from "../kvm/structs.ts";
import { addKvmStats } from "../kvm/stats.ts";
import { ABI } from "../kernel/abi.ts";
import { dropSpareRam, GuestMemory, hostHasSwap, spareKept } from "./memory.ts";

/** KVM_SYNC_X86_REGS: KVM copies the registers to kvm_run at every exit. */
export const SYNC_X86_REGS = 1n;
/** KVM_SYNC_X86_SREGS: the segment and control registers too. */
export const SYNC_X86_SREGS = 2n;
const HUGE_PAGE = 0x200000;
/**
 * A kept machine's flush thread clears what its ended process left
 * resident in place when it is at most this much (it stays resident for
 * the next process, which then takes no host faults there). A larger
 * process's pages are left for the next fork to copy over, or the next
 * execve to give back (slots.c: clean).
 */
const CLEAR_IN_PLACE = 16 * 1024 * 1024;
/** Below this much RAM the top of RAM is laid out in 64 KiB steps, not 2 MiB ones. */
export const SMALL_RAM = 64 * 1024 * 1024;
const STEP = 0x10000;
/**
 * Room for 4 KiB page tables split from 2 MiB pages: one per 2 MiB of RAM
 * (at least 2 MiB; in a small VM at least 64 KiB).
 */
const ptPool = (size: number) =>
  size < SMALL_RAM
    ? Math.max(STEP, size / 512)
    : Math.max(HUGE_PAGE, Math.ceil(size / 512 / HUGE_PAGE) * HUGE_PAGE);

/** A KVM VM with `size` bytes of RAM and vCPU 0. Dispose it to free them. */
export class Machine {
  /** The KVM VM. */
  readonly vm: VmFd;
  /** vCPU 0 (the other vCPUs belong to the threads: threads.ts). */
  readonly vcpu: VcpuFd;
  /** vCPU 0's `struct kvm_run`. */
  readonly run: Deno.PointerObject;
  /** The same, as bytes. */
  readonly runView: DataView;
  /** The size of every vCPU's `kvm_run` mapping. */
  readonly runSize: number;
  /** KVM copies the registers to kvm_run at every exit (KVM_CAP_SYNC_REGS). */
  readonly syncRegs: boolean;
  /** vCPU 0's TSC frequency (kHz), read once, before a runner has it. */
  readonly tscKhz: number;
  /** The kvm_run fields KVM fills at every exit: the registers, and the segments where it can. */
  readonly #synced: bigint;
  /**
   * Where the stack ends. Above it: the page-table pool, then the
   * per-vCPU blocks at the very top. It sits on a 2 MiB boundary, so
   * that one huge page holds what a program uses of its stack.
   */
  readonly stackTop: number;
  /** The VM fd's close on a worker thread (dispose), under way or done. */
  teardown?: Promise<void>;
  /**
   * A process has run on it before ({@linkcode recycle}): vCPU 0 keeps
   * its CPUID (KVM refuses a second), RAM may hold the old pages.
   */
  reused = false;
  /**
   * KVM's counters of the VM and of vCPU 0 when a new process took it
   * (recycle, unpark): RunStats.kvm counts from there.
   */
  kvmBase?: { vm: Record<string, number>; vcpu: Record<string, number> };
  /** The KVM device it was made on (BootOptions.kvmDevice; unset: /dev/kvm). */
  device?: string;
  /**
   * The pool's memory slot (high.ts) was added: KVM may keep what it
   * derived from the old guest's tables there, so the machine is not
   * recycled.
   */
  poolSlot = false;
  #runs: Deno.PointerObject[] = [];
  #disposed = false;
  /** A slot flush under way on another thread (flushLater), and the page of its request. */
  #flush?: SlotFlush;
  #flushPage?: FlushPage;

  private constructor(
    readonly kvm: Kvm,
    vm: VmFd,
    /** Guest RAM, guest-physical address 0 up. */
    readonly mem: GuestMemory,
    vcpu: VcpuFd,
  ) {
    this.vm = vm;
    this.vcpu = vcpu;
    this.runSize = kvm.vcpuMmapSize();
    this.tscKhz = vcpu.tscKhz();
    const sync = BigInt(kvm.checkExtension(CAP.SYNC_REGS));
    this.syncRegs = (sync & SYNC_X86_REGS) !== 0n;
    // The segments (~0.3 KiB more per exit) spare fork and vfork a vCPU
    // ioctl through the parent's runner thread (liveSregs).
    this.#synced = this.syncRegs ? sync & (SYNC_X86_REGS | SYNC_X86_SREGS) : 0n;
    const { run, view } = this.#map(vcpu);
    this.run = run;
    this.runView = view;
    // The page-table pool at the top of RAM (the per-vCPU blocks come after RAM).
    const size = mem.size;
    const step = size < SMALL_RAM ? STEP : HUGE_PAGE;
    this.stackTop = Math.floor((size - ptPool(size)) / step) * step;
    // The guest sees the system pages, the table pool and the per-vCPU
    // blocks through 4 KiB entries and uses few of them: a huge page there
    // would only cost the host 2 MiB of clearing at the first touch.
    mem.noHugePages(0, ABI.USER_MIN);
    mem.noHugePages(this.stackTop, mem.slotSize - this.stackTop);
  }

  /** A VM with `size` bytes of RAM and vCPU 0; nothing is left behind if it fails. */
  static create(size: number, kvmDevice?: string): Machine {
    const kvm = new Kvm(kvmDevice);
    let vm: VmFd | undefined, mem: GuestMemory | undefined, vcpu: VcpuFd | undefined;
    try {
      vm = kvm.createVm();
      mem = GuestMemory.take(size);
      vm.setUserMemoryRegion(0, 0n, BigInt(mem.slotSize), mem.host);
      vcpu = vm.createVcpu(0);
      const m = new Machine(kvm, vm, mem, vcpu);
      m.device = kvmDevice;
      return m;
    } catch (e) {
      vcpu?.close();
      const teardown = vm?.closeInBackground();
      mem?.release(true, teardown);
      kvm.close();
      throw e;
    }
  }

  /** Adds the memory slot of the pool that backs the address space above RAM (high.ts), once. */
  addPoolSlot(): void {
    if (this.poolSlot) return;
    const mem = this.mem;
    this.vm.setUserMemoryRegion(
      1,
      BigInt(mem.poolBase),
      BigInt(mem.poolSize),
      mem.host + BigInt(mem.poolBase),
    );
    this.poolSlot = mem.poolSlot = true;
  }

  /** Maps `vcpu`'s `kvm_run` (unmapped with the machine), with register sync on where KVM has it. */
  mapRun(vcpu: VcpuFd): { addr: bigint; view: DataView } {
    const { run, view } = this.#map(vcpu);
    this.#runs.push(run);
    return { addr: Deno.UnsafePointer.value(run), view };
  }

  #map(vcpu: VcpuFd): { run: Deno.PointerObject; view: DataView } {
    const run = vcpu.mapRun(this.runSize);
    const view = new DataView(Deno.UnsafePointerView.getArrayBuffer(run, this.runSize));
    if (this.#synced) view.setBigUint64(LAYOUTS.kvm_run.fields.kvm_valid_regs, this.#synced, true);
    return { run, view };
  }

  /**
   * Readies a machine whose process has ended for another process of the
   * run, in place of a new VM (1-12 ms to make on kvm_pvm, and 3-6 ms of
   * teardown on another core). Its memory slot is deleted and added again
   * (0.4 ms), which drops everything KVM derived from the old guest's page
   * tables (a shadow MMU would otherwise keep it, and the host writes the
   * new page tables behind its back). With `zero` the RAM is given back
   * to the host (it reads as zeros again); without, the caller overwrites
   * or clears what the old process left ({@linkcode GuestMemory.copyFrom}).
   */
  recycle(zero: boolean): void {
    if (this.#flush) {
      // Begun when the machine was kept (flushLater): done by now, as a rule.
      const f = this.#flush;
      this.#flush = undefined;
      f.wait();
      // Cleared on the flush thread (give): nothing of the old process is left.
      this.clean = f.cleaned;
      if (zero) this.mem.clear(this.clean);
      else if (this.clean) this.mem.copied = 0;
    } else {
      this.clean = false;
      const size = BigInt(this.mem.slotSize);
      this.vm.setUserMemoryRegion(0, 0n, 0n, this.mem.host);
      this.mem.overlays.clear(); // the old process's shared pages are not the next one's
      if (zero) this.mem.clear();
      this.vm.setUserMemoryRegion(0, 0n, size, this.mem.host);
    }
    this.runView.setUint8(LAYOUTS.kvm_run.fields.immediate_exit, 0);
    this.runView.setBigUint64(LAYOUTS.kvm_run.fields.kvm_dirty_regs, 0n, true);
    // Its ioctls went through the old process's runner thread, now gone.
    this.vcpu.via = undefined;
    this.reused = true;
    this.kvmBase = { vm: this.vm.counters(), vcpu: this.vcpu.counters() };
  }

  /**
   * Starts what {@linkcode recycle} needs on a host thread of its own, as
   * the machine is kept for a later process of the run: its memory slot
   * deleted and added again (slots.c), which the next fork or execve then
   * finds done rather than waiting out KVM's grace periods itself.
   */
  flushLater(clean = false): void {
    if (this.#flush) return;
    this.mem.overlays.clear(); // the old process's shared pages are not the next one's
    this.#flushPage ??= flushPage();
    // With `clean` the thread also clears what the old process left (slots.c),
    // which it finds by mincore: not with swap, where a page may hold data unseen.
    const vec = clean && !hostHasSwap()
      ? this.#residency ??= new Uint8Array(this.mem.slotSize / 4096)
      : undefined;
    this.#flush = new SlotFlush(
      this.#flushPage,
      this.vm.fd,
      this.mem.host,
      this.mem.slotSize,
      vec && { vec, budget: CLEAR_IN_PLACE },
    );
  }
  /** The flush thread's mincore vector (a byte per page of the slot). */
  #residency?: Uint8Array;

  /**
   * KVM's counters of the VM and of `vcpus` (vCPU 0 first), zeros left
   * out: a reused machine's count from its reuse, not from its last process.
   */
  counters(vcpus: VcpuFd[]): Record<string, number> {
    const base = this.kvmBase;
    const kvm = vcpus.reduce(
      (sum, v, i) => addKvmStats(sum, v.counters(i === 0 ? base?.vcpu : undefined)),
      this.vm.counters(base?.vm),
    );
    return Object.fromEntries(Object.entries(kvm).filter(([, n]) => n !== 0));
  }

  /**
   * Whether its RAM reads as zeros since {@linkcode recycle}: cleared on its
   * flush thread while it was kept, so a fork copies into it as into fresh
   * memory and an execve's image needs no clearing.
   */
  clean = false;

  /** Whether the slot flush begun by {@linkcode flushLater} is still under way. */
  get flushing(): boolean {
    return this.#flush !== undefined && !this.#flush.done;
  }

  /**
   * Puts the machine aside for a later guest ({@linkcode keepMachine}):
   * its memory slot is deleted and added again on a host thread of its own
   * (slots.c: as {@linkcode flushLater}), which drops what KVM derived from
   * the old guest's page tables, and its RAM cleared (and faulted in again
   * when the process is quiet: {@linkcode GuestMemory.clearForNext}).
   * Synchronous, the pair cost a boot() ~0.5 ms of its ~2.
   */
  park(): void {
    this.flushLater();
    this.mem.clearForNext();
  }

  /** Readies a parked machine for its next guest: RAM claimed, the slot's flush waited for. */
  unpark(): void {
    this.mem.claim();
    const f = this.#flush;
    this.#flush = undefined;
    if (f) f.wait();
    else this.vm.setUserMemoryRegion(0, 0n, BigInt(this.mem.slotSize), this.mem.host);
    this.runView.setUint8(LAYOUTS.kvm_run.fields.immediate_exit, 0);
    // Registers the last guest left in the sync area for a KVM_RUN that never came.
    this.runView.setBigUint64(LAYOUTS.kvm_run.fields.kvm_dirty_regs, 0n, true);
    this.vcpu.via = undefined;
    this.reused = true;
    this.kvmBase = { vm: this.vm.counters(), vcpu: this.vcpu.counters() };
  }

  /**
   * Frees the `kvm_run` mappings, `vcpus` (the threads' other vCPUs) and
   * vCPU 0, the VM and the KVM fd; the RAM is kept, cleared, for the next
   * machine unless `runnersDone` is false (a runner may still write it).
   * KVM's teardown of the VM waits for RCU grace periods, so the VM fd is
   * closed on a worker thread ({@linkcode teardown}). Safe to call twice.
   */
  dispose(runnersDone: boolean, vcpus: VcpuFd[] = []): void {
    if (this.#disposed) return;
    this.#disposed = true;
    // Its ioctls must have returned before the VM fd closes (or is reused).
    try {
      this.#flush?.wait();
    } catch { /* the VM goes anyway */ }
    this.#flush = undefined;
    if (this.#flushPage) freeFlushPage(this.#flushPage);
    libc().munmap(this.run, BigInt(this.runSize));
    for (const run of this.#runs) libc().munmap(run, BigInt(this.runSize));
    for (const vcpu of vcpus) vcpu.close();
    this.vcpu.close();
    this.teardown = this.vm.closeInBackground();
    this.mem.release(runnersDone, this.teardown);
    this.kvm.close();
  }
}

/** The registers of the vCPU `vcpu` (its `kvm_run` at `view`): from the sync area when KVM keeps them there. */
export function liveRegs(vcpu: VcpuFd, view: DataView): DataView {
  if (view.getBigUint64(LAYOUTS.kvm_run.fields.kvm_valid_regs, true) & SYNC_X86_REGS) {
    return new DataView(view.buffer, LAYOUTS.kvm_run.fields["s.regs"], LAYOUTS.kvm_regs.size);
  }
  const regs = new Uint8Array(LAYOUTS.kvm_regs.size);
  vcpu.getRegs(regs);
  return new DataView(regs.buffer);
}

/**
 * The segment registers of `vcpu` (its `kvm_run` at `view`) as of its last
 * exit, which is being served: from the sync area when KVM keeps them
 * there, else by KVM_GET_SREGS (through its runner, when it has one).
 */
export function liveSregs(vcpu: VcpuFd, view: DataView): Uint8Array {
  const size = LAYOUTS.kvm_sregs.size;
  if (view.getBigUint64(LAYOUTS.kvm_run.fields.kvm_valid_regs, true) & SYNC_X86_SREGS) {
    const at = view.byteOffset + LAYOUTS.kvm_run.fields["s.regs.sregs"];
    return new Uint8Array(view.buffer, at, size).slice();
  }
  const sregs = new Uint8Array(size);
  vcpu.getSregs(sregs);
  return sregs;
}

/** Sets `vcpu`'s registers before its next KVM_RUN (through kvm_run's sync area when it can). */
export function setRegs(vcpu: VcpuFd, view: DataView, regs: BigUint64Array): void {
  const f = LAYOUTS.kvm_run.fields;
  if (view.getBigUint64(f.kvm_valid_regs, true) & SYNC_X86_REGS) {
    new BigUint64Array(view.buffer, f["s.regs"], regs.length).set(regs);
    view.setBigUint64(f.kvm_dirty_regs, view.getBigUint64(f.kvm_dirty_regs, true) | 1n, true);
  } else {
    vcpu.setRegs(new Uint8Array(regs.buffer, regs.byteOffset, LAYOUTS.kvm_regs.size));
  }
}

/**
 * Machines of ended processes, kept for the run's next fork or execve
 * (see {@linkcode Machine.recycle}). Only machines that ran one thread
 * (vCPU 0: KVM cannot remove a vCPU, and a new process numbers its own
 * from 1) and no exitless wake-up come back. Dispose it with the run.
 */
export class MachinePool {
  #free: Machine[] = [];
  #closed = false;
  /** Takes that waited for a machine's slot flush. */
  #waits = 0;

  /** @param max how many machines it keeps (each holds its RAM's resident pages). */
  constructor(readonly max = 4) {}

  /**
   * A kept machine of `size` bytes of RAM, recycled (`zero`: with zeroed
   * RAM), or undefined (the caller makes one). One whose slot flush is done
   * comes first. A run that forks or execs again and again (a fork loop, a
   * shell script) gives a machine back as its child ends and wants one a
   * moment later, before the flush (0.4-0.9 ms of KVM's grace periods)
   * is done: after two such waits, a second machine is made instead of a
   * third wait, and from then on the two take turns, each flushed while
   * the other runs.
   */
  take(size: number, zero: boolean): Machine | undefined {
    let i = this.#free.findIndex((m) => m.mem.size === size && !m.flushing);
    if (i < 0) {
      i = this.#free.findIndex((m) => m.mem.size === size);
      if (i < 0) return undefined;
      const others = this.#free.filter((m) => m.mem.size === size).length;
      if (others < 2 && ++this.#waits > 2) return undefined;
    }
    const [m] = this.#free.splice(i, 1);
    try {
      m.recycle(zero);
      return m;
    } catch {
      m.dispose(true);
      return undefined;
    }
  }

  /** Keeps `m` for a later process (its slot flush begun), or disposes of it when full or closed. */
  give(m: Machine): void {
    if (this.#closed || this.#free.length >= this.max || m.poolSlot) return m.dispose(true);
    try {
      // A fork child that got more than the flush thread clears in place
      // left more still: its pages stay for the next fork to copy over.
      m.flushLater(m.mem.copied <= CLEAR_IN_PLACE);
    } catch {
      return m.dispose(true);
    }
    this.#free.push(m);
  }

  /** Disposes of every kept machine; later ones given are disposed at once. */
  dispose(): void {
    this.#closed = true;
    for (const m of this.#free.splice(0)) m.dispose(true);
  }
}

/** The machine kept for this process's next VM ({@linkcode keepMachine}). */
let spareMachine: Machine | undefined;
/** Whether ended runs' machines are kept ({@linkcode reuseMachines}). */
let reuse = true;

/**
 * Whether a run's machine is kept for the next boot (the default) or torn
 * down, each boot making its own VM: for comparing the two (bench/boot_repeat.ts).
 */
export function reuseMachines(on: boolean): void {
  reuse = on;
}

/**
 * Keeps `m`, whose guest has ended, for the next VM this process makes
 * ({@linkcode takeSpareMachine}), in place of tearing it down: making a VM
 * and its vCPU costs ~0.9 ms on kvm_pvm and its teardown ~0.3 ms more on
 * this thread, where reusing one costs ~0.4 ms (the memory slot deleted and
 * added back, the RAM cleared). The caller vouches that the guest could
 * change nothing in vCPU 0 that setupVcpu does not set again (it ran at
 * CPL 3, where MSRs, control and debug registers are out of its reach),
 * that it had no other vCPU and no ioeventfd, and that it ended cleanly.
 * Returns false, doing nothing, when one is kept already or keeping is off
 * ({@linkcode keepSpareMemory}).
 */
export function keepMachine(m: Machine): boolean {
  if (spareMachine || !reuse || !spareKept() || m.poolSlot) return false;
  try {
    m.park();
  } catch {
    return false;
  }
  spareMachine = m;
  return true;
}

/** The kept machine, readied for a new guest, if it has `size` bytes of RAM on `device`. */
export function takeSpareMachine(size: number, device?: string): Machine | undefined {
  const m = spareMachine;
  if (!m || m.mem.size !== size || m.device !== device) return undefined;
  spareMachine = undefined;
  try {
    m.unpark();
    return m;
  } catch {
    m.dispose(true);
    return undefined;
  }
}

/**
 * Frees what hermitux keeps for this process's next VM: the machine of the
 * last run and the cleared guest RAM ({@linkcode GuestMemory.release}).
 * Call it when no more VMs will boot; it resolves once KVM has torn the
 * kept VM down. The next boot then makes everything afresh.
 */
export async function dropSpareMemory(): Promise<void> {
  const m = spareMachine;
  spareMachine = undefined;
  m?.dispose(true); // its RAM becomes the spare RAM, dropped next
  await dropSpareRam();
  await m?.teardown;
}
