/**
 * The sampler of one process (one Guest): at each tick of the profile's
 * rate it takes every live vCPU's call stack. A vCPU that runs guest code
 * on a runner thread is kicked out of KVM_RUN (one exit, ~30-80 µs on
 * kvm_pvm) and read when its exit is served; the vCPU the main thread runs
 * itself is read when the host timer stops it; a thread in a host call is
 * sampled as `[host] NAME` on top of its user stack, read from its syscall
 * frame. Parked threads (blocked in a call) are off the CPU: not sampled,
 * as `perf record` would not. A sample keeps the registers and a copy of
 * the stack; stacks are unwound by the objects' `.eh_frame` (unwind.ts),
 * else the rbp chain, and named from the program's and its libraries'
 * symbols when the process's code is looked at ({@linkcode Sampler.flush}).
 * @module
 */
import { ABI, HOSTCALL } from "../kernel/abi.ts";
import { syscallName } from "../syscalls/table.ts";
import { GUEST_SYSCALLS } from "../kernel/local.ts";
import { regOffset } from "../kvm/structs.ts";
import type { Profile } from "./profile.ts";
import type { Guest } from "../vm/guest.ts";
import type { Cpu } from "../vm/threads.ts";
import { CTL, kick, WSTATE } from "../vm/wire.ts";
import { liveRegs } from "../vm/machine.ts";
import { physOf } from "../vm/percpu.ts";
import { R } from "../vm/sigframe.ts";
import { SYSCALL_FRAME, SYSCALL_FRAME_ADDR } from "../vm/deliver.ts";
import { userRip } from "../vm/stubs.ts";
import { monotonicNs } from "../syscalls/signal.ts";
import { symbolizer } from "../vm/crash.ts";
import { comm } from "../syscalls/process.ts";
import type { LoadedObject } from "../vm/fault.ts";
import { PT_LOAD } from "../loader/elf.ts";
import type { GuestMemory } from "../vm/memory.ts";
import { type FrameRule, frameRuleAt } from "./unwind.ts";

/** Deepest stack followed. */
const MAX_DEPTH = 128;
/** Bytes of stack copied at each sample (deeper frames are not followed). */
const STACK_COPY = 16 * 1024;
/** Samples kept raw before they are unwound and counted (~16 KiB each). */
const DRAIN_AT = 2048;
const PF_X = 1, RBP_DWARF = 6;

/**
 * One sample as taken: the pc (0: not in user code), stack and frame
 * pointers, a copy of the stack from the stack pointer up, and a host
 * call's name; unwound when the process's code is looked at (flush).
 */
interface RawSample {
  pc: number;
  sp: number;
  fp: number;
  stack?: Uint8Array;
  host?: string;
}

/** A process's sampler; made for each process of a profiled run. */
export class Sampler {
  readonly #g: Guest;
  readonly #profile: Profile;
  #next: bigint;
  #slot: bigint;
  #raw: RawSample[] = [];

  /** Starts sampling `g` into `profile` (its ticks come through `g.sig`'s watches). */
  constructor(g: Guest, profile: Profile) {
    this.#g = g;
    this.#profile = profile;
    this.#next = this.#slot = monotonicNs() + profile.periodNs;
    g.sig.watches.add({ due: () => this.#next, fire: (now) => this.#tick(now) });
  }

  #tick(now: bigint): void {
    this.#advance(now);
    const g = this.#g, threads = g.threads;
    if (!threads || g.process?.ended) return;
    for (const cpu of threads.cpus) {
      if (!cpu.alive || cpu.parked || !cpu.tid) continue;
      if (!cpu.runner) {
        // The main thread's own vCPU: stopped only when the host timer got it out.
        if (g.timerStop) g.asThread(cpu, () => this.sampleLive(cpu));
        continue;
      }
      const state = Atomics.load(cpu.ctl!, CTL.state);
      if (cpu.busy || state === WSTATE.EXITED) {
        this.#sampleCall(cpu);
      } else if (state === WSTATE.RUN) {
        // Read at its exit (serveExit), as for a signal.
        cpu.sample = true;
        // Only where no kick is under way: a store would overwrite the runner's
        // mark (2) of one it is reporting.
        if (Atomics.compareExchange(cpu.ctl!, CTL.intr, 0, 1) === 0) {
          kick(cpu.runAddr, Deno.pid, cpu.hostTid!);
        }
      }
    }
  }

  /**
   * The next tick: a period after the last one's slot, moved by up to half
   * a period either way at random. Ticks at a fixed period alias with a
   * program that works in periods of its own (a loop of 8 ms sampled every
   * 1.003 ms sees the same few phases) and skew the shares; the jitter
   * keeps the rate and removes that.
   */
  #advance(now: bigint): void {
    const period = this.#profile.periodNs;
    this.#slot += period;
    // Behind by more than a period (a long host call): the next tick from now.
    if (this.#slot <= now) this.#slot = now + period;
    this.#next = this.#slot + BigInt(Math.floor((Math.random() - 0.5) * Number(period)));
  }

  /**
   * A host call of the thread being served has just been served: when a
   * tick fell due meanwhile, that tick finds the thread in the call (the
   * main thread could not look at it while it served).
   */
  afterCall(cpu: Cpu, name: string): void {
    const now = monotonicNs();
    if (now < this.#next) return;
    this.#advance(now);
    this.#sampleCall(cpu, name);
    // The others are looked at on the next tick.
  }

  /** The stack of `cpu`, stopped out of KVM_RUN (as the thread being served). */
  sampleLive(cpu: Cpu): void {
    const g = this.#g, mem = g.mem!, regs = liveRegs(g.vcpu!, g.runView!);
    const reg = (r: "rip" | "rbp" | "rsp") => Number(regs.getBigUint64(regOffset(r), true));
    const rip = reg("rip");
    if (rip < ABI.STUB_ADDR || (rip >= ABI.STUB_END && rip < ABI.USER_MIN)) {
      // In the guest kernel: a syscall it serves, or one waiting for the
      // host (posted exitless); the frame holds its number until it returns.
      this.#sampleCall(cpu, undefined, true);
      return;
    }
    const pc = rip < ABI.USER_MIN ? userRip(mem, rip) : rip;
    this.#keep({ pc, sp: reg("rsp"), fp: reg("rbp"), stack: this.#stack(reg("rsp")) });
  }

  /**
   * `cpu` is in syscall `name` (undefined: the one in its host-call block,
   * or with `inKernel` the one its syscall frame holds): `[host] NAME`, or
   * `[kernel] NAME` for one the guest kernel serves, on the user stack it left.
   */
  #sampleCall(cpu: Cpu, name?: string, inKernel = false): void {
    const g = this.#g, mem = g.mem!, v = mem.view;
    const frame = physOf(mem, cpu.id, SYSCALL_FRAME_ADDR);
    const at = (r: number) => Number(v.getBigUint64(frame + SYSCALL_FRAME.indexOf(r) * 8, true));
    const rip = at(R.rcx);
    if (!name) {
      const hc = physOf(mem, cpu.id, ABI.HOSTCALL_ADDR);
      name = syscallName(inKernel ? at(R.rax) : v.getUint32(hc + HOSTCALL.nr, true));
    }
    const host = `${name in GUEST_SYSCALLS ? "[kernel]" : "[host]"} ${name}`;
    // rcx is the return address: the pc of the call is the byte before it.
    if (rip < ABI.USER_MIN) this.#keep({ pc: 0, sp: 0, fp: 0, host });
    else {this.#keep({
        pc: rip - 1,
        sp: at(R.rsp),
        fp: at(R.rbp),
        stack: this.#stack(at(R.rsp)),
        host,
      });}
  }

  /** A copy of the stack from `sp` up (unwound later, when its code is known). */
  #stack(sp: number): Uint8Array | undefined {
    const mem = this.#g.mem!;
    if (!(sp >= ABI.USER_MIN && sp < mem.userEnd)) return undefined;
    return mem.bytes.slice(sp, Math.min(sp + STACK_COPY, mem.userEnd));
  }

  #keep(s: RawSample): void {
    this.#raw.push(s);
    // Bounded memory: every so many samples are named and counted now.
    if (this.#raw.length >= DRAIN_AT) this.flush();
  }

  /**
   * Names the samples taken so far (the program's, the interpreter's, the
   * vDSO's and the mapped libraries' symbols; stacks unwound by their
   * `.eh_frame`, else the rbp chain) and adds them to the profile.
   */
  flush(): void {
    if (!this.#raw.length) return;
    const g = this.#g, raw = this.#raw;
    this.#raw = [];
    const objects = symbolizer(g).objects;
    const name = new TextDecoder().decode(comm(g.process!)).replace(/\0.*$/s, "");
    const names = new Map<number, string | undefined>();
    const frameOf = (pc: number, leaf: boolean) => {
      const key = leaf ? -pc - 1 : pc;
      if (!names.has(key)) names.set(key, nameAt(objects, pc, leaf));
      return names.get(key);
    };
    const rules = new Map<number, FrameRule | undefined>();
    const ruleAt = (pc: number) => {
      if (!rules.has(pc)) {
        const o = codeObject(objects, pc);
        rules.set(pc, o?.bytes ? frameRuleAt(o.bytes, o.elf, pc - o.base) : undefined);
      }
      return rules.get(pc);
    };
    for (const s of raw) {
      const frames: string[] = [];
      const inCode = (pc: number) => codeObject(objects, pc) !== undefined;
      const pcs = s.pc ? unwind(s, ruleAt, inCode, g.mem!) : [];
      for (let i = 0; i < pcs.length; i++) {
        const f = frameOf(pcs[i], i === 0);
        if (f === undefined) break; // a return address outside any code: rbp held data
        frames.push(f);
      }
      frames.reverse();
      if (s.host) frames.push(s.host);
      this.#profile.add([name || "?", ...frames]);
    }
  }
}

/**
 * The pcs of `s`'s stack, innermost first (the callers' as return address
 * less one: inside the call): each frame by its `.eh_frame` rule, else
 * by the rbp chain, reading only the sample's copy of the stack.
 */
function unwind(
  s: RawSample,
  ruleAt: (pc: number) => FrameRule | undefined,
  inCode: (pc: number) => boolean,
  mem: GuestMemory,
): number[] {
  const stack = s.stack, base = s.sp;
  const read = (addr: number) => {
    const off = addr - base;
    if (!stack || off < 0 || off + 8 > stack.length || off % 8) return undefined;
    return Number(new DataView(stack.buffer, stack.byteOffset + off, 8).getBigUint64(0, true));
  };
  const out = [s.pc];
  let pc = s.pc, sp = s.sp, fp = s.fp;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const rule = ruleAt(pc);
    let cfa: number, ra: number | undefined, next: number | undefined;
    if (rule) {
      cfa = (rule.cfaReg === RBP_DWARF ? fp : sp) + rule.cfaOffset;
      ra = read(cfa + rule.raOffset);
      next = rule.rbpOffset === undefined ? fp : read(cfa + rule.rbpOffset);
    } else {
      // A leaf with no frame of its own (and no unwind entry) has its
      // caller at the stack pointer; otherwise follow rbp.
      const top = depth === 0 ? read(sp) : undefined;
      if (top !== undefined && top >= ABI.USER_MIN && afterCall(mem, top) && inCode(top - 1)) {
        cfa = sp + 8;
        ra = top;
        next = fp;
      } else {
        if (fp < sp || fp % 8) break;
        cfa = fp + 16;
        ra = read(fp + 8);
        next = read(fp);
      }
    }
    if (ra === undefined || next === undefined || ra < ABI.USER_MIN || cfa <= sp) break;
    out.push(ra - 1);
    pc = ra - 1;
    sp = cfa;
    fp = next;
  }
  return out;
}

/** Whether the bytes before `ret` in guest memory end with a call instruction. */
function afterCall(mem: GuestMemory, ret: number): boolean {
  if (ret < 8 || ret > mem.size) return false;
  const b = (i: number) => mem.bytes[ret - i];
  if (b(5) === 0xe8) return true; // call rel32
  for (const len of [2, 3, 6, 7]) if (b(len) === 0xff && ((b(len - 1) >> 3) & 7) === 2) return true;
  return false;
}

/** The loaded object whose executable segment holds `pc`. */
function codeObject(objects: readonly LoadedObject[], pc: number): LoadedObject | undefined {
  return objects.find((o) =>
    o.elf.segments.some((s) =>
      s.type === PT_LOAD && (s.flags & PF_X) && pc >= o.base + s.vaddr &&
      pc < o.base + s.vaddr + s.memsz
    )
  );
}

/**
 * The function at `pc` in the loaded objects, `[OBJECT]` where it has no
 * symbol; a leaf outside them is `[unknown]`, a return address outside
 * them ends the chain (undefined).
 */
function nameAt(objects: readonly LoadedObject[], pc: number, leaf: boolean): string | undefined {
  const o = codeObject(objects, pc);
  if (!o) return leaf ? "[unknown]" : undefined;
  const hit = o.elf.symbolize(pc - o.base);
  if (hit) return hit.name;
  // Unnamed code (a stripped ld.so's own functions) is one frame per object.
  return `[${o.name ?? "program"}]`;
}
