/**
 * Linear-sweep disassembly of an object's code with iced-x86: each
 * instruction's address, length and way of passing control on, the direct
 * branch edges, the `syscall` sites, and (decoded again on demand) what one
 * instruction does to the general registers, for the backward data flow.
 * @module
 */
// Inline, not a bare name from deno.json's imports: a script elsewhere that
// imports this checkout's mod.ts by path has no such map (tests/package_test.ts).
import {
  ConditionCode,
  Decoder,
  DecoderOptions,
  FlowControl,
  Instruction,
  InstructionInfoFactory,
  MemorySizeExt,
  Mnemonic,
  OpAccess,
  OpKind,
  Register,
  // deno-lint-ignore no-import-prefix
} from "npm:iced-x86@1.21.0";

/** Bytes of code at a link-time address. */
export interface CodeRange {
  /** Link-time address of `bytes[0]`. */
  addr: number;
  /** The code. */
  bytes: Uint8Array;
}

/** How an instruction passes control on (the `kinds` array of a {@linkcode Disassembly}). */
export const Kind = {
  /** Falls through to the next instruction. */
  NEXT: 0,
  /** Direct unconditional jump. */
  JMP: 1,
  /** Direct conditional jump (also `loop`, `jrcxz`, `xbegin`). */
  JCC: 2,
  /** Direct call. */
  CALL: 3,
  /** Return. */
  RET: 4,
  /** Indirect jump. */
  IJMP: 5,
  /** Indirect call. */
  ICALL: 6,
  /** Does not continue: `ud2`, `int3`, `hlt`, an invalid encoding. */
  STOP: 7,
  /** `syscall`. */
  SYSCALL: 8,
  /** `sysenter`. */
  SYSENTER: 9,
  /** `int 0x80` (the 32-bit system call entry). */
  INT80: 10,
} as const;

/** General register families: 0 rax, 1 rcx, 2 rdx, 3 rbx, 4 rsp, 5 rbp, 6 rsi, 7 rdi, 8-15 r8-r15. */
export const REG_NAMES: readonly string[] = [
  "rax",
  "rcx",
  "rdx",
  "rbx",
  "rsp",
  "rbp",
  "rsi",
  "rdi",
  "r8",
  "r9",
  "r10",
  "r11",
  "r12",
  "r13",
  "r14",
  "r15",
];

/** The family (index into {@linkcode REG_NAMES}) of an iced register, or -1. */
export function family(reg: number): number {
  if (reg >= Register.AL && reg <= Register.BL) return reg - Register.AL;
  if (reg >= Register.AH && reg <= Register.BH) return reg - Register.AH;
  if (reg >= Register.SPL && reg <= Register.R15L) return reg - Register.SPL + 4;
  if (reg >= Register.AX && reg <= Register.R15W) return reg - Register.AX;
  if (reg >= Register.EAX && reg <= Register.R15D) return reg - Register.EAX;
  if (reg >= Register.RAX && reg <= Register.R15) return reg - Register.RAX;
  return -1;
}

/** Whether an iced register is a whole 32- or 64-bit general register. */
function isWide(reg: number): boolean {
  return reg >= Register.EAX && reg <= Register.R15;
}

/** What one instruction does, in the terms the data flow understands. */
export type Op =
  /** `dst` = `value` (`mov r, imm`, `xor r, r`, `lea r, [abs]`). */
  | { t: "const"; dst: number; value: number }
  /** `dst` = `src` + `add` (`mov`, `lea r, [src+add]`, `movzx`, `movsxd`). */
  | { t: "copy"; dst: number; src: number; add: number }
  /** `dst` += `add` (`add`/`sub`/`inc`/`dec` with a constant). */
  | { t: "addi"; dst: number; add: number }
  /** Registers `a` and `b` swap. */
  | { t: "xchg"; a: number; b: number }
  /** A push of a constant, a register, or (neither given) something else. */
  | { t: "push"; value?: number; src?: number }
  /** A pop into register `dst` (-1 for memory). */
  | { t: "pop"; dst: number }
  /** rsp += `delta` (`add rsp, N`, `sub rsp, N`). */
  | { t: "rsp"; delta: number }
  /** The low `bits` of `dst` = `value`, the rest unchanged (`mov al, imm8`). */
  | { t: "setlow"; dst: number; bits: number; value: number }
  /** Flags from comparing `reg` with `value` (`test r, r`, `cmp r, imm`). */
  | { t: "test"; reg: number; value: number }
  /** A 64-bit store to `[rsp + disp]` of a constant or a register. */
  | { t: "store"; disp: number; value?: number; src?: number }
  /** Anything else. */
  | { t: "other" };

/** One instruction's effect on the general registers and the stack. */
export interface Effect {
  /** Register families it writes, wholly, partly or conditionally (bit n = family n). */
  writes: number;
  /** Whether it writes memory addressed from rsp or rbp (beyond what `op` says). */
  stackWrite: boolean;
  /** The pattern, if it is one the data flow follows. */
  op: Op;
  /** The instruction in Intel syntax, for reports. */
  text: string;
  /** Whether it is a `nop` (alignment padding, when nothing jumps to it). */
  nop: boolean;
  /** For `je`/`jne`: whether the jump is taken on equality (`"e"`) or not (`"ne"`). */
  cond?: "e" | "ne";
}

const WRITES = new Set<number>([
  OpAccess.Write,
  OpAccess.CondWrite,
  OpAccess.ReadWrite,
  OpAccess.ReadCondWrite,
]);

const IMMEDIATES = new Set<number>([
  OpKind.Immediate8,
  OpKind.Immediate16,
  OpKind.Immediate32,
  OpKind.Immediate64,
  OpKind.Immediate8to16,
  OpKind.Immediate8to32,
  OpKind.Immediate8to64,
  OpKind.Immediate32to64,
]);

/** Families every call and system call may clobber besides rax. */
const RAX = 0;

/**
 * The instructions of some code ranges, found by linear sweep, as parallel
 * arrays indexed by instruction number in address order.
 */
export class Disassembly {
  /** Link-time address of each instruction. */
  readonly addrs: Float64Array;
  /** Length of each instruction in bytes. */
  readonly lens: Uint8Array;
  /** How each instruction passes control on ({@linkcode Kind}). */
  readonly kinds: Uint8Array;
  /** Direct branch and call targets, by instruction index. */
  readonly targets: Map<number, number>;
  /** Indices of the direct jumps (conditional or not) to each address. */
  readonly jumpsTo: Map<number, number[]>;
  /** Indices of the direct calls to each address. */
  readonly callsTo: Map<number, number[]>;
  /** RIP-relative memory operands of indirect jumps and calls (GOT slots), by index. */
  readonly slotBranches: Map<number, number>;
  /** Entry addresses of PLT-style stubs (`[endbr64;] jmp [rip+slot]`) and their slots. */
  readonly stubs: Map<number, number>;
  /** Indices of the `syscall`, `sysenter` and `int 0x80` instructions. */
  readonly sites: number[];
  readonly #ranges: { addr: number; end: number; decoder: Decoder }[];
  readonly #effects = new Map<number, Effect>();
  readonly #ins = new Instruction();
  readonly #factory = new InstructionInfoFactory();

  /** Decodes `ranges` (sorted or not; they must not overlap). */
  constructor(ranges: readonly CodeRange[]) {
    const sorted = [...ranges].filter((r) => r.bytes.length > 0).sort((a, b) => a.addr - b.addr);
    const addrs: number[] = [];
    const lens: number[] = [];
    const kinds: number[] = [];
    this.targets = new Map();
    this.jumpsTo = new Map();
    this.callsTo = new Map();
    this.slotBranches = new Map();
    this.stubs = new Map();
    this.sites = [];
    this.#ranges = [];
    const ins = this.#ins;
    for (const range of sorted) {
      const decoder = new Decoder(64, range.bytes, DecoderOptions.None);
      decoder.ip = BigInt(range.addr);
      this.#ranges.push({ addr: range.addr, end: range.addr + range.bytes.length, decoder });
      let addr = range.addr;
      let endbr = -1;
      while (decoder.canDecode) {
        decoder.decodeOut(ins);
        const i = addrs.length;
        const len = ins.length;
        const kind = this.#classify(ins, i);
        addrs.push(addr);
        lens.push(len);
        kinds.push(kind);
        if (kind === Kind.IJMP && this.slotBranches.has(i)) {
          this.stubs.set(endbr >= 0 ? addrs[endbr] : addr, this.slotBranches.get(i)!);
        }
        endbr = kind === Kind.NEXT && ins.mnemonic === Mnemonic.Endbr64 ? i : -1;
        addr += len;
      }
    }
    this.addrs = Float64Array.from(addrs);
    this.lens = Uint8Array.from(lens);
    this.kinds = Uint8Array.from(kinds);
  }

  #classify(ins: Instruction, i: number): number {
    const flow = ins.flowControl;
    if (flow === FlowControl.Next) {
      if (ins.isInvalid || ins.mnemonic === Mnemonic.Hlt) return Kind.STOP;
      return Kind.NEXT;
    }
    const direct = () => {
      const k = ins.op0Kind;
      if (k !== OpKind.NearBranch64 && k !== OpKind.NearBranch32 && k !== OpKind.NearBranch16) {
        return undefined;
      }
      return Number(ins.nearBranchTarget);
    };
    const edge = (map: Map<number, number[]>, target: number) => {
      this.targets.set(i, target);
      const list = map.get(target);
      if (list) list.push(i);
      else map.set(target, [i]);
    };
    const slot = () => {
      if (ins.op0Kind === OpKind.Memory && ins.memoryBase === Register.RIP) {
        this.slotBranches.set(i, Number(ins.memoryDisplacement));
      }
    };
    switch (flow) {
      case FlowControl.UnconditionalBranch: {
        const t = direct();
        if (t === undefined) return Kind.STOP; // far jump
        edge(this.jumpsTo, t);
        return Kind.JMP;
      }
      case FlowControl.ConditionalBranch:
      case FlowControl.XbeginXabortXend: {
        const t = direct();
        if (t !== undefined) edge(this.jumpsTo, t);
        return t === undefined ? Kind.NEXT : Kind.JCC;
      }
      case FlowControl.Call: {
        const m = ins.mnemonic;
        if (m === Mnemonic.Syscall || m === Mnemonic.Sysenter) {
          this.sites.push(i);
          return m === Mnemonic.Syscall ? Kind.SYSCALL : Kind.SYSENTER;
        }
        const t = direct();
        if (t === undefined) return Kind.ICALL;
        edge(this.callsTo, t);
        return Kind.CALL;
      }
      case FlowControl.IndirectCall:
        slot();
        return Kind.ICALL;
      case FlowControl.IndirectBranch:
        slot();
        return Kind.IJMP;
      case FlowControl.Return:
        return Kind.RET;
      case FlowControl.Interrupt:
        if (ins.mnemonic === Mnemonic.Int && ins.immediate8 === 0x80) {
          this.sites.push(i);
          return Kind.INT80;
        }
        return ins.mnemonic === Mnemonic.Int3 ? Kind.STOP : Kind.NEXT;
      default: // Exception: ud0/ud1/ud2 and the like
        return Kind.STOP;
    }
  }

  /** Number of instructions. */
  get length(): number {
    return this.addrs.length;
  }

  /** Index of the instruction at `addr`, or -1 if none starts there. */
  indexOf(addr: number): number {
    const a = this.addrs;
    let lo = 0;
    let hi = a.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid] === addr) return mid;
      if (a[mid] < addr) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Whether instruction `i - 1` ends where instruction `i` starts. */
  contiguous(i: number): boolean {
    return i > 0 && this.addrs[i - 1] + this.lens[i - 1] === this.addrs[i];
  }

  #decode(i: number): Instruction {
    const addr = this.addrs[i];
    const range = this.#ranges.find((r) => addr >= r.addr && addr < r.end)!;
    range.decoder.position = addr - range.addr;
    range.decoder.ip = BigInt(addr);
    range.decoder.decodeOut(this.#ins);
    return this.#ins;
  }

  /** The instruction at index `i` in Intel syntax. */
  text(i: number): string {
    return this.#decode(i).toString();
  }

  /** What instruction `i` does to the registers (decoded once, then cached). */
  effect(i: number): Effect {
    let e = this.#effects.get(i);
    if (e === undefined) {
      e = this.#computeEffect(i);
      this.#effects.set(i, e);
    }
    return e;
  }

  #computeEffect(i: number): Effect {
    const ins = this.#decode(i);
    const info = this.#factory.info(ins);
    let writes = 0;
    for (const u of info.usedRegisters()) {
      const f = family(u.register);
      if (f >= 0 && WRITES.has(u.access)) writes |= 1 << f;
      u.free();
    }
    let stackWrite = false;
    for (const m of info.usedMemory()) {
      const base = family(m.base);
      if ((base === 4 || base === 5) && WRITES.has(m.access)) stackWrite = true;
      m.free();
    }
    info.free();
    const kind = this.kinds[i];
    // Calls and system calls change rax (the result); iced lists only what the CPU does.
    if (kind === Kind.SYSCALL || kind === Kind.SYSENTER || kind === Kind.INT80) writes |= 1 << RAX;
    const op = pattern(ins);
    if (op.t === "push" || op.t === "store") stackWrite = false;
    const cc = ins.conditionCode;
    return {
      writes,
      stackWrite,
      op,
      text: ins.toString(),
      nop: ins.mnemonic === Mnemonic.Nop,
      ...(kind === Kind.JCC && cc === ConditionCode.e ? { cond: "e" as const } : {}),
      ...(kind === Kind.JCC && cc === ConditionCode.ne ? { cond: "ne" as const } : {}),
    };
  }

  /** Releases the decoders' WebAssembly memory. */
  free(): void {
    for (const r of this.#ranges) r.decoder.free();
    this.#ranges.length = 0;
    this.#ins.free();
    this.#factory.free();
  }
}

function immediateOf(ins: Instruction, operand: number): number | undefined {
  if (!IMMEDIATES.has(ins.opKind(operand))) return undefined;
  const imm = ins.immediate(operand);
  return Number(BigInt.asIntN(64, imm));
}

/** 8 or 16 for a register that is the low byte or word of its family, else 0. */
function lowBits(reg: number): number {
  if ((reg >= Register.AL && reg <= Register.BL) || (reg >= Register.SPL && reg <= Register.R15L)) {
    return 8;
  }
  return reg >= Register.AX && reg <= Register.R15W ? 16 : 0;
}

/** Recognizes the instructions the data flow can see through. */
function pattern(ins: Instruction): Op {
  const m = ins.mnemonic;
  const n = ins.opCount;
  const r0 = n > 0 && ins.op0Kind === OpKind.Register ? ins.op0Register : Register.None;
  const dst = isWide(r0) ? family(r0) : -1;
  const r1 = n > 1 && ins.op1Kind === OpKind.Register ? ins.op1Register : Register.None;
  const src = family(r1);
  const imm1 = n > 1 ? immediateOf(ins, 1) : undefined;
  const dword = r0 >= Register.EAX && r0 <= Register.R15D;
  // A 32-bit destination is zero-extended; keep the value as the CPU sees it.
  const value = (v: number) => dword ? Number(BigInt.asUintN(32, BigInt(v))) : v;
  switch (m) {
    case Mnemonic.Mov:
      if (dst >= 0 && imm1 !== undefined) return { t: "const", dst, value: value(imm1) };
      if (imm1 !== undefined && lowBits(r0) > 0) {
        const bits = lowBits(r0);
        return { t: "setlow", dst: family(r0), bits, value: imm1 & (2 ** bits - 1) };
      }
      if (dst >= 0 && src >= 0 && isWide(r1)) return { t: "copy", dst, src, add: 0 };
      if (
        ins.op0Kind === OpKind.Memory && family(ins.memoryBase) === 4 &&
        ins.memoryIndex === Register.None && MemorySizeExt.size(ins.memorySize) >= 4
      ) {
        const disp = Number(BigInt.asIntN(64, ins.memoryDisplacement));
        if (imm1 !== undefined) return { t: "store", disp, value: imm1 };
        if (src >= 0 && isWide(r1)) return { t: "store", disp, src };
      }
      break;
    case Mnemonic.Xor:
    case Mnemonic.Sub:
      if (dst >= 0 && r1 === r0) return { t: "const", dst, value: 0 };
      if (m === Mnemonic.Sub && dst === 4 && imm1 !== undefined) return { t: "rsp", delta: -imm1 };
      if (m === Mnemonic.Sub && dst >= 0 && imm1 !== undefined) {
        return { t: "addi", dst, add: -imm1 };
      }
      break;
    case Mnemonic.Add:
      if (dst === 4 && imm1 !== undefined) return { t: "rsp", delta: imm1 };
      if (dst >= 0 && imm1 !== undefined) return { t: "addi", dst, add: imm1 };
      break;
    case Mnemonic.Inc:
    case Mnemonic.Dec:
      if (dst >= 0 && dst !== 4) return { t: "addi", dst, add: m === Mnemonic.Inc ? 1 : -1 };
      break;
    case Mnemonic.Lea: {
      if (dst < 0 || ins.memoryIndex !== Register.None) break;
      const disp = Number(BigInt.asIntN(64, ins.memoryDisplacement));
      if (ins.memoryBase === Register.None) return { t: "const", dst, value: value(disp) };
      const base = family(ins.memoryBase);
      if (base >= 0) return { t: "copy", dst, src: base, add: disp };
      break;
    }
    case Mnemonic.Movzx:
    case Mnemonic.Movsx:
    case Mnemonic.Movsxd:
      if (dst >= 0 && src >= 0) return { t: "copy", dst, src, add: 0 };
      break;
    case Mnemonic.Test:
      if (dst >= 0 && r1 === r0) return { t: "test", reg: dst, value: 0 };
      break;
    case Mnemonic.Cmp:
      if (dst >= 0 && imm1 !== undefined) return { t: "test", reg: dst, value: value(imm1) };
      break;
    case Mnemonic.Xchg:
      if (dst >= 0 && src >= 0 && isWide(r1)) return { t: "xchg", a: dst, b: src };
      break;
    case Mnemonic.Push: {
      const imm = immediateOf(ins, 0);
      if (imm !== undefined) return { t: "push", value: imm };
      if (r0 >= Register.RAX && r0 <= Register.R15) return { t: "push", src: family(r0) };
      return { t: "push" };
    }
    case Mnemonic.Pop:
      return { t: "pop", dst: r0 >= Register.RAX && r0 <= Register.R15 ? family(r0) : -1 };
  }
  return { t: "other" };
}
