/**
 * What gdb reads and changes of a stopped guest. Every stop is a CPU
 * exception (int3 at a breakpoint, #DB after a single step, a fault): the
 * guest kernel's exception stub has stored to its doorbell, the CPU's
 * frame (rip, cs, rflags, rsp, ss) is on the vCPU's exception stack and the
 * other registers are the program's, untouched by the stub. So the user's
 * context is the live registers with rip, rflags and rsp from that frame;
 * resuming writes the frame back and lets the stub's `iretq` return to it
 * (as signal delivery does, src/vm/deliver.ts). Memory goes through
 * {@linkcode GuestMemory.check}; software breakpoints are `int3` bytes whose
 * originals are kept here, and reads show the originals.
 * @module
 */
import { LAYOUTS } from "../kvm/structs.ts";
import type { GuestMemory } from "../vm/memory.ts";
import { physOf } from "../vm/percpu.ts";
import { liveRegs, setRegs } from "../vm/machine.ts";
import { R } from "../vm/sigframe.ts";
import { SYSCALL_FRAME, SYSCALL_FRAME_ADDR } from "../vm/deliver.ts";
import { CTL, WSTATE } from "../vm/wire.ts";
import { ABI } from "../kernel/abi.ts";
import { SEL } from "../vm/cpu.ts";
import type { Cpu } from "../vm/threads.ts";
import type { VcpuFd } from "../kvm/ioctls.ts";
import type { Guest } from "../vm/guest.ts";
import type { RegisterFile } from "./regs.ts";

/** rflags.TF: trap after the next instruction. */
export const TF = 0x100n;
/** The `int3` opcode. */
export const INT3 = 0xcc;

/** A thread stopped in an exception stub, and its registers as gdb sees them. */
export class StoppedThread {
  /** The exception vector that stopped it. */
  readonly vector: number;
  /** The thread's id. */
  readonly tid: number;
  /** The registers gdb reads and writes. */
  readonly regs: RegisterFile;
  #g: Guest;
  #cpu: number;
  /** Guest-virtual address of the CPU frame's rip slot (on the exception stack). */
  #frame: number;
  /** The stub's own rip (its `iretq`) and rflags, to resume it. */
  #stubRip: bigint;
  #stubFlags: bigint;
  #fpuDirty = false;
  #segsDirty = false;

  /**
   * Reads the context of the vCPU `g` serves, stopped by `vector` with its
   * frame's rip slot at `frame` and its live registers `live`.
   */
  constructor(g: Guest, vector: number, frame: number, live: DataView) {
    this.#g = g;
    this.vector = vector;
    this.#cpu = g.threads?.serving.id ?? 0;
    this.tid = g.threads?.serving.tid ?? g.pid;
    this.#frame = frame;
    const gprs = new BigUint64Array(18);
    for (let i = 0; i < 18; i++) gprs[i] = live.getBigUint64(i * 8, true);
    this.#stubRip = gprs[R.rip];
    this.#stubFlags = gprs[R.rflags];
    gprs[R.rip] = this.#slot(0);
    gprs[R.rflags] = this.#slot(16);
    gprs[R.rsp] = this.#slot(24);
    const sregs = new Uint8Array(LAYOUTS.kvm_sregs.size);
    g.vcpu!.getSregs(sregs);
    const sv = new DataView(sregs.buffer), f = LAYOUTS.kvm_sregs.fields;
    const sel = (at: number) => sv.getUint16(at + LAYOUTS.kvm_segment.fields.selector, true);
    const fpu = readFpu(g.vcpu!);
    this.regs = {
      gprs,
      segs: {
        cs: Number(this.#slot(8) & 0xffffn),
        ss: Number(this.#slot(32) & 0xffffn),
        ds: sel(f.ds),
        es: sel(f.es),
        fs: sel(f.fs),
        gs: sel(f.gs),
      },
      fsBase: sv.getBigUint64(f.fs + LAYOUTS.kvm_segment.fields.base, true),
      gsBase: sv.getBigUint64(f.gs + LAYOUTS.kvm_segment.fields.base, true),
      fpu,
    };
  }

  /** The frame's u64 at `off` (0 rip, 8 cs, 16 rflags, 24 rsp, 32 ss). */
  #slot(off: number): bigint {
    const mem = this.#g.mem!;
    return mem.view.getBigUint64(physOf(mem, this.#cpu, this.#frame + off), true);
  }

  #setSlot(off: number, value: bigint): void {
    const mem = this.#g.mem!;
    mem.view.setBigUint64(physOf(mem, this.#cpu, this.#frame + off), value, true);
  }

  /** The user's rip. */
  get rip(): bigint {
    return this.regs.gprs[R.rip];
  }

  set rip(value: bigint) {
    this.regs.gprs[R.rip] = value;
  }

  /** Notes that part of the state gdb wrote must go back to the vCPU. */
  touched(part: "gprs" | "segs" | "fpu"): void {
    if (part === "fpu") this.#fpuDirty = true;
    if (part === "segs") this.#segsDirty = true;
  }

  /**
   * Writes the context back: rip, rflags (TF set when `step`) and rsp into
   * the frame, the other registers into the vCPU, which resumes at the
   * stub's `iretq` with rsp at the frame. `live` (the exception path's
   * view of the registers) is updated too, for a signal delivered next.
   */
  resume(step: boolean, live: DataView): void {
    const g = this.#g, gprs = this.regs.gprs;
    const flags = step ? gprs[R.rflags] | TF : gprs[R.rflags] & ~TF;
    this.#setSlot(0, gprs[R.rip]);
    this.#setSlot(16, flags);
    this.#setSlot(24, gprs[R.rsp]);
    const next = gprs.slice();
    next[R.rip] = this.#stubRip;
    next[R.rflags] = this.#stubFlags;
    next[R.rsp] = BigInt(this.#frame);
    for (let i = 0; i < 18; i++) live.setBigUint64(i * 8, next[i], true);
    setRegs(g.vcpu!, g.runView!, next);
    if (this.#fpuDirty) writeFpu(g.vcpu!, this.regs.fpu);
    if (this.#segsDirty) {
      const sregs = new Uint8Array(LAYOUTS.kvm_sregs.size);
      g.vcpu!.getSregs(sregs);
      const sv = new DataView(sregs.buffer), f = LAYOUTS.kvm_sregs.fields;
      sv.setBigUint64(f.fs + LAYOUTS.kvm_segment.fields.base, this.regs.fsBase, true);
      sv.setBigUint64(f.gs + LAYOUTS.kvm_segment.fields.base, this.regs.gsBase, true);
      g.vcpu!.setSregs(sregs);
    }
  }
}

/** How long a kicked thread may take to leave KVM_RUN (ms). */
const STOP_WAIT_MS = 2000;

/**
 * All-stop: every other thread of `g` still in KVM_RUN is kicked out (as
 * for job control: its exit then waits, unserved, until the run loop goes
 * on after gdb resumes the guest). Threads parked in a host call stay as
 * they are: they run no guest code.
 */
export function stopOthers(g: Guest): void {
  const t = g.threads;
  if (!t || t.cpus.length < 2) return;
  const running = t.cpus.filter((c) =>
    c !== t.serving && c.alive && c.runner && !c.busy && !c.parked
  );
  for (const c of running) t.interrupt(c);
  const until = performance.now() + STOP_WAIT_MS;
  for (const c of running) {
    while (Atomics.load(c.ctl!, CTL.state) === WSTATE.RUN && performance.now() < until) {
      // A kick lands in microseconds.
    }
  }
}

/**
 * The registers of a thread other than the one that stopped, read only:
 * where its vCPU stands in user code, its registers; in the guest kernel
 * (a syscall, maybe parked in the host), the user context its syscall
 * entry saved. Undefined if the thread is gone or still running.
 */
export function threadRegisters(g: Guest, tid: number): RegisterFile | undefined {
  const cpu = g.threads?.cpus.find((c) => c.alive && c.tid === tid);
  if (!cpu || (cpu.runner && Atomics.load(cpu.ctl!, CTL.state) === WSTATE.RUN)) return undefined;
  const mem = g.mem!, live = liveRegs(cpu.vcpu, cpu.runView);
  const gprs = new BigUint64Array(18);
  for (let i = 0; i < 18; i++) gprs[i] = live.getBigUint64(i * 8, true);
  if (cpu.parked || gprs[R.rip] < BigInt(ABI.USER_MIN)) {
    const frame = physOf(mem, cpu.id, SYSCALL_FRAME_ADDR);
    SYSCALL_FRAME.forEach((r, i) => gprs[r] = mem.view.getBigUint64(frame + i * 8, true));
    gprs[R.rip] = gprs[R.rcx];
    gprs[R.rflags] = gprs[R.r11];
  }
  return { gprs, segs: userSegs(), ...bases(cpu), fpu: fpuOf(cpu) };
}

function userSegs(): RegisterFile["segs"] {
  const ds = SEL.USER_DS;
  return { cs: SEL.USER_CS, ss: ds, ds, es: ds, fs: ds, gs: ds };
}

function bases(cpu: Cpu): { fsBase: bigint; gsBase: bigint } {
  const sregs = new Uint8Array(LAYOUTS.kvm_sregs.size);
  cpu.vcpu.getSregs(sregs);
  const sv = new DataView(sregs.buffer), f = LAYOUTS.kvm_sregs.fields;
  const base = LAYOUTS.kvm_segment.fields.base;
  return {
    fsBase: sv.getBigUint64(f.fs + base, true),
    gsBase: sv.getBigUint64(f.gs + base, true),
  };
}

function fpuOf(cpu: Cpu): Uint8Array {
  return readFpu(cpu.vcpu);
}

/**
 * Where each `struct kvm_fpu` field (the layout {@linkcode RegisterFile.fpu}
 * keeps) sits in the XSAVE image's legacy area: [kvm_fpu offset, XSAVE
 * offset, bytes]. KVM_GET_FPU leaves MXCSR 0 on kvm_pvm, so the x87/SSE
 * state is read and written through KVM_GET/SET_XSAVE.
 */
const FPU_IN_XSAVE: readonly [number, number, number][] = (() => {
  const f = LAYOUTS.kvm_fpu.fields;
  return [
    [f.fpr, 32, 128],
    [f.fcw, 0, 2],
    [f.fsw, 2, 2],
    [f.ftwx, 4, 1],
    [f.last_opcode, 6, 2],
    [f.last_ip, 8, 8],
    [f.last_dp, 16, 8],
    [f.xmm, 160, 256],
    [f.mxcsr, 24, 4],
  ];
})(); // deno-fmt-ignore

/** The vCPU's x87/SSE state in `struct kvm_fpu` layout. */
function readFpu(vcpu: VcpuFd): Uint8Array {
  const xsave = new Uint8Array(LAYOUTS.kvm_xsave.size), fpu = new Uint8Array(LAYOUTS.kvm_fpu.size);
  vcpu.getXsave(xsave);
  for (const [to, from, n] of FPU_IN_XSAVE) fpu.set(xsave.subarray(from, from + n), to);
  return fpu;
}

/** Sets the vCPU's x87/SSE state from `fpu` (`struct kvm_fpu` layout); the rest of XSAVE stays. */
function writeFpu(vcpu: VcpuFd, fpu: Uint8Array): void {
  const xsave = new Uint8Array(LAYOUTS.kvm_xsave.size);
  vcpu.getXsave(xsave);
  for (const [from, to, n] of FPU_IN_XSAVE) xsave.set(fpu.subarray(from, from + n), to);
  vcpu.setXsave(xsave);
}

/** Software breakpoints: `int3` bytes in guest memory and the bytes they hide. */
export class Breakpoints {
  #saved = new Map<number, number>();

  /** Each breakpoint's address and the byte its `int3` hides. */
  hidden(): IterableIterator<[number, number]> {
    return this.#saved.entries();
  }

  /** Addresses with a breakpoint. */
  get addresses(): number[] {
    return [...this.#saved.keys()];
  }

  /** Whether `addr` has a breakpoint. */
  has(addr: number): boolean {
    return this.#saved.has(addr);
  }

  /** Puts an `int3` at `addr`; false if that is not user memory. */
  insert(mem: GuestMemory, addr: number): boolean {
    if (this.#saved.has(addr)) return true;
    const at = checked(mem, addr, 1);
    if (at === undefined) return false;
    this.#saved.set(at, mem.bytes[at]);
    mem.bytes[at] = INT3;
    return true;
  }

  /**
   * Takes the breakpoint at `addr` away: its byte comes back unless the
   * code there changed meanwhile (a syscall site rewritten over it).
   */
  remove(mem: GuestMemory, addr: number): boolean {
    const orig = this.#saved.get(addr);
    if (orig === undefined) return true;
    this.#saved.delete(addr);
    if (checked(mem, addr, 1) === undefined) return false;
    if (mem.bytes[addr] === INT3) mem.bytes[addr] = orig;
    return true;
  }

  /** Removes every breakpoint. */
  clear(mem: GuestMemory): void {
    for (const a of this.addresses) this.remove(mem, a);
  }

  /** Reads `len` bytes at `addr` as they are without breakpoints; undefined if not user memory. */
  read(mem: GuestMemory, addr: number, len: number): Uint8Array | undefined {
    const at = checked(mem, addr, len);
    if (at === undefined) return undefined;
    const out = mem.bytes.slice(at, at + len);
    for (const [a, orig] of this.#saved) {
      if (a >= at && a < at + len && out[a - at] === INT3) out[a - at] = orig;
    }
    return out;
  }

  /** Writes `data` at `addr`, keeping breakpoints in place; false if not user memory. */
  write(mem: GuestMemory, addr: number, data: Uint8Array): boolean {
    const at = checked(mem, addr, data.length);
    if (at === undefined) return false;
    mem.bytes.set(data, at);
    for (const a of this.#saved.keys()) {
      if (a >= at && a < at + data.length) {
        this.#saved.set(a, data[a - at]);
        mem.bytes[a] = INT3;
      }
    }
    return true;
  }
}

/** `addr` if [addr, addr + len) is user memory (the one bounds check), else undefined. */
function checked(mem: GuestMemory, addr: number, len: number): number | undefined {
  try {
    return mem.check(addr, len);
  } catch {
    return undefined;
  }
}
