/**
 * The sampler of one process (one Guest): at each tick of the profile's
 * rate it takes every live vCPU's call stack. A vCPU that runs guest code
 * on a runner thread is kicked out of KVM_RUN (one exit, ~30-80 µs on
 * kvm_pvm) and read when its exit is served; the vCPU the main thread runs
 * itself is read when the host timer stops it; a thread in a host call is
 * sampled as `[host] NAME` on top of its user stack, read from its syscall
 * frame. Parked threads (blocked in a call) are off the CPU: not sampled,
 * as `perf record` would not. Stacks follow the frame-pointer chain (code
 * built with -fno-omit-frame-pointer gives whole stacks; other code gives
 * its leaf and what chain there is). Addresses are kept raw and named
 * once, from the program's and its libraries' symbols, when the process
 * ends ({@linkcode Sampler.flush}).
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

/** Deepest stack followed. */
const MAX_DEPTH = 128;
/** How far above the stack pointer a frame may be (a thread's stack is at most this). */
const MAX_STACK = 64 * 1024 * 1024;
const PF_X = 1;

/**
 * One sample: return addresses innermost first (the first is the pc), a
 * host call's name, and the word at the stack pointer (a leaf function
 * that set up no frame has its return address there).
 */
interface RawSample {
  pcs: number[];
  host?: string;
  top?: number;
}

/** A process's sampler; made for each process of a profiled run. */
export class Sampler {
  readonly #g: Guest;
  readonly #profile: Profile;
  #next: bigint;
  #slot: bigint;
  #raw: RawSample[] = [];
  /** Set while the host timer has stopped the vCPU the main thread runs. */
  timerStop = false;

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
        if (this.timerStop) g.asThread(cpu, () => this.sampleLive(cpu));
        continue;
      }
      const state = Atomics.load(cpu.ctl!, CTL.state);
      if (cpu.busy || state === WSTATE.EXITED) {
        this.#sampleCall(cpu);
      } else if (state === WSTATE.RUN) {
        // Read at its exit (serveExit), as for a signal.
        cpu.sample = true;
        Atomics.store(cpu.ctl!, CTL.intr, 1);
        kick(cpu.runAddr, Deno.pid, cpu.hostTid!);
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
    const sp = reg("rsp");
    const top = sp >= 0 && sp + 8 <= mem.size ? Number(mem.u64(sp)) : undefined;
    this.#raw.push({ pcs: this.#walk(pc, reg("rbp"), sp), top });
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
    name = `${name in GUEST_SYSCALLS ? "[kernel]" : "[host]"} ${name}`;
    if (rip < ABI.USER_MIN) {
      this.#raw.push({ pcs: [], host: name });
      return;
    }
    // rcx is the return address: the pc of the call is the byte before it.
    this.#raw.push({ pcs: this.#walk(rip - 1, at(R.rbp), at(R.rsp)), host: name });
  }

  /** The pc and the frame-pointer chain's return addresses (each less one: inside the call). */
  #walk(pc: number, fp: number, sp: number): number[] {
    const mem = this.#g.mem!, out = [pc];
    for (let i = 0; i < MAX_DEPTH; i++) {
      if (fp < sp || fp % 8 || fp - sp > MAX_STACK || fp + 16 > mem.size) break;
      const next = Number(mem.u64(fp)), ret = Number(mem.u64(fp + 8));
      if (ret < ABI.USER_MIN) break;
      out.push(ret - 1);
      if (next <= fp) break;
      sp = fp;
      fp = next;
    }
    return out;
  }

  /**
   * Names the samples taken so far (the program's, the interpreter's, the
   * vDSO's and the mapped libraries' symbols) and adds them to the profile.
   */
  flush(): void {
    if (!this.#raw.length) return;
    const g = this.#g, raw = this.#raw;
    this.#raw = [];
    const objects = symbolizer(g).objects;
    const name = new TextDecoder().decode(comm(g.process!)).replace(/\0.*$/s, "");
    const cache = new Map<number, string | undefined>();
    const frameOf = (pc: number, leaf: boolean) => {
      if (!cache.has(pc)) cache.set(pc, nameAt(objects, pc, leaf));
      return cache.get(pc);
    };
    const mem = g.mem!;
    for (const s of raw) {
      const frames: string[] = [];
      // A return address outside any code ends the chain (rbp held data).
      for (let i = 0; i < s.pcs.length; i++) {
        const f = frameOf(s.pcs[i], i === 0);
        if (f === undefined) break;
        frames.push(f);
        // A leaf without a frame of its own: its caller is at the stack
        // pointer, not in the chain (whose first return skips it).
        const top = s.top;
        if (
          i === 0 && top !== undefined && top - 1 !== s.pcs[1] && afterCall(mem, top) &&
          frameOf(top - 1, false) !== undefined && frameOf(top - 1, false) !== f
        ) frames.push(frameOf(top - 1, false)!);
      }
      frames.reverse();
      if (s.host) frames.push(s.host);
      this.#profile.add([name || "?", ...frames]);
    }
  }
}

/** Whether the bytes before `ret` in guest memory end with a call instruction. */
function afterCall(mem: GuestMemory, ret: number): boolean {
  if (ret < 8 || ret > mem.size) return false;
  const b = (i: number) => mem.bytes[ret - i];
  if (b(5) === 0xe8) return true; // call rel32
  for (const len of [2, 3, 6, 7]) if (b(len) === 0xff && ((b(len - 1) >> 3) & 7) === 2) return true;
  return false;
}

/**
 * The function at `pc` in the loaded objects, `[OBJECT]` where it has no
 * symbol; a leaf outside them is `[unknown]`, a return address outside
 * them ends the chain (undefined).
 */
function nameAt(objects: readonly LoadedObject[], pc: number, leaf: boolean): string | undefined {
  const o = objects.find((o) =>
    o.elf.segments.some((s) =>
      s.type === PT_LOAD && (s.flags & PF_X) && pc >= o.base + s.vaddr &&
      pc < o.base + s.vaddr + s.memsz
    )
  );
  if (!o) return leaf ? "[unknown]" : undefined;
  const hit = o.elf.symbolize(pc - o.base);
  if (hit) return hit.name;
  // Unnamed code (a stripped ld.so's own functions) is one frame per object.
  return `[${o.name ?? "program"}]`;
}
