/**
 * The registers gdb sees: the target description (`target.xml`, x86-64
 * GNU/Linux with the core, SSE, `orig_rax` and `fs_base`/`gs_base`
 * features, the set gdb's amd64-linux support requires) and the `g`
 * packet's layout, which follows the description's order. Values come
 * from a {@linkcode RegisterFile}: the general registers (KVM_GET_REGS and
 * the exception frame), the segments and bases (KVM_GET_SREGS) and the
 * x87/SSE state (KVM_GET_FPU).
 * @module
 */
import { LAYOUTS, REG_NAMES, type RegName } from "../kvm/structs.ts";
import { leHex } from "./packet.ts";

/** What one stopped thread's registers are, as the target reads and writes them. */
export interface RegisterFile {
  /** rax … r15, rip, rflags in `struct kvm_regs` order. */
  gprs: BigUint64Array;
  /** Selectors of cs, ss, ds, es, fs, gs. */
  segs: Record<"cs" | "ss" | "ds" | "es" | "fs" | "gs", number>;
  /** The FS and GS bases. */
  fsBase: bigint;
  /** The GS base. */
  gsBase: bigint;
  /** A `struct kvm_fpu` image (x87, SSE, MXCSR). */
  fpu: Uint8Array;
}

/** Where a register's value lives. */
type Source =
  | { gpr: RegName }
  | { seg: keyof RegisterFile["segs"] }
  | { base: "fsBase" | "gsBase" }
  | { fpu: number; size: number }
  | { ftag: true }
  | { origRax: true };

/** One register in gdb's numbering: its name, its size in bytes, where it lives. */
export interface RegisterInfo {
  /** The name in target.xml. */
  name: string;
  /** Its size in bytes in the `g` packet. */
  bytes: number;
  /** Where the value lives. */
  source: Source;
}

const F = LAYOUTS.kvm_fpu.fields;
const GPR_ORDER: RegName[] = [
  "rax",
  "rbx",
  "rcx",
  "rdx",
  "rsi",
  "rdi",
  "rbp",
  "rsp",
  "r8",
  "r9",
  "r10",
  "r11",
  "r12",
  "r13",
  "r14",
  "r15",
]; // deno-fmt-ignore

/** Every register, in the order of target.xml and the `g` packet. */
export const REGISTERS: readonly RegisterInfo[] = [
  ...GPR_ORDER.map((r) => ({ name: r, bytes: 8, source: { gpr: r } })),
  { name: "rip", bytes: 8, source: { gpr: "rip" } },
  { name: "eflags", bytes: 4, source: { gpr: "rflags" } },
  ...(["cs", "ss", "ds", "es", "fs", "gs"] as const).map((s) => ({
    name: s,
    bytes: 4,
    source: { seg: s },
  })),
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => ({
    name: `st${i}`,
    bytes: 10,
    source: { fpu: F.fpr + 16 * i, size: 10 },
  })),
  { name: "fctrl", bytes: 4, source: { fpu: F.fcw, size: 2 } },
  { name: "fstat", bytes: 4, source: { fpu: F.fsw, size: 2 } },
  { name: "ftag", bytes: 4, source: { ftag: true } },
  { name: "fiseg", bytes: 4, source: { fpu: F.last_ip + 4, size: 0 } },
  { name: "fioff", bytes: 4, source: { fpu: F.last_ip, size: 4 } },
  { name: "foseg", bytes: 4, source: { fpu: F.last_dp + 4, size: 0 } },
  { name: "fooff", bytes: 4, source: { fpu: F.last_dp, size: 4 } },
  { name: "fop", bytes: 4, source: { fpu: F.last_opcode, size: 2 } },
  ...Array.from({ length: 16 }, (_, i) => ({
    name: `xmm${i}`,
    bytes: 16,
    source: { fpu: F.xmm + 16 * i, size: 16 },
  })),
  { name: "mxcsr", bytes: 4, source: { fpu: F.mxcsr, size: 4 } },
  { name: "orig_rax", bytes: 8, source: { origRax: true } },
  { name: "fs_base", bytes: 8, source: { base: "fsBase" } },
  { name: "gs_base", bytes: 8, source: { base: "gsBase" } },
];

/** Index in `struct kvm_regs` of each general register gdb names. */
const GPR_INDEX = Object.fromEntries(REG_NAMES.map((n, i) => [n, i])) as Record<RegName, number>;

/** The full x87 tag word (2 bits a register) from KVM's abridged one (a bit a register). */
function fullTag(fpu: Uint8Array): number {
  const v = new DataView(fpu.buffer, fpu.byteOffset);
  const abridged = fpu[F.ftwx], top = (v.getUint16(F.fsw, true) >> 11) & 7;
  let tag = 0;
  for (let phys = 0; phys < 8; phys++) {
    let t = 3; // empty
    if (abridged & (1 << phys)) {
      const st = (phys - top) & 7, at = F.fpr + 16 * st;
      const exp = v.getUint16(at + 8, true) & 0x7fff, mant = v.getBigUint64(at, true);
      t = exp === 0x7fff ? 2 : exp === 0 ? (mant === 0n ? 1 : 2) : (mant >> 63n ? 0 : 2);
    }
    tag |= t << (2 * phys);
  }
  return tag;
}

/** Register `n`'s value as little-endian bytes (its `g`/`p` encoding). */
export function readRegister(file: RegisterFile, n: number): Uint8Array {
  const r = REGISTERS[n], out = new Uint8Array(r.bytes);
  const v = new DataView(out.buffer);
  const s = r.source;
  if ("gpr" in s) {
    const value = file.gprs[GPR_INDEX[s.gpr]];
    if (r.bytes === 8) v.setBigUint64(0, value, true);
    else v.setUint32(0, Number(value & 0xffffffffn), true);
  } else if ("seg" in s) v.setUint32(0, file.segs[s.seg], true);
  else if ("base" in s) v.setBigUint64(0, file[s.base], true);
  else if ("origRax" in s) v.setBigInt64(0, -1n, true);
  else if ("ftag" in s) v.setUint32(0, fullTag(file.fpu), true);
  else out.set(file.fpu.subarray(s.fpu, s.fpu + s.size));
  return out;
}

/**
 * Sets register `n` from little-endian `bytes`; returns which part of the
 * state changed, or undefined for a register that cannot be written
 * (orig_rax, the x87 selectors) or a value of the wrong size.
 */
export function writeRegister(
  file: RegisterFile,
  n: number,
  bytes: Uint8Array,
): "gprs" | "segs" | "fpu" | undefined {
  const r = REGISTERS[n];
  if (!r || bytes.length !== r.bytes) return undefined;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const s = r.source;
  if ("gpr" in s) {
    file.gprs[GPR_INDEX[s.gpr]] = r.bytes === 8
      ? v.getBigUint64(0, true)
      : BigInt(v.getUint32(0, true));
    return "gprs";
  }
  if ("base" in s) {
    file[s.base] = v.getBigUint64(0, true);
    return "segs";
  }
  if ("fpu" in s && s.size) {
    file.fpu.set(bytes.subarray(0, s.size), s.fpu);
    return "fpu";
  }
  if ("ftag" in s) {
    // Back to KVM's abridged form: a register is valid unless tagged empty (3).
    const tag = v.getUint32(0, true);
    let abridged = 0;
    for (let i = 0; i < 8; i++) if (((tag >> (2 * i)) & 3) !== 3) abridged |= 1 << i;
    file.fpu[F.ftwx] = abridged;
    return "fpu";
  }
  return undefined;
}

/** Every register in `g` packet form (hex). */
export function allRegistersHex(file: RegisterFile): string {
  let s = "";
  for (let n = 0; n < REGISTERS.length; n++) {
    for (const b of readRegister(file, n)) s += b.toString(16).padStart(2, "0");
  }
  return s;
}

/** The `g` packet's size in bytes. */
export const G_PACKET_BYTES = REGISTERS.reduce((n, r) => n + r.bytes, 0);

/** The register `p` returns for gdb's number `n`, hex (undefined if there is none). */
export function registerHex(file: RegisterFile, n: number): string | undefined {
  if (!(n >= 0 && n < REGISTERS.length)) return undefined;
  const b = readRegister(file, n);
  return leHex(b.reduceRight((a, x) => (a << 8n) | BigInt(x), 0n), b.length);
}

const EFLAGS = [
  ["CF", 0],
  ["", 1],
  ["PF", 2],
  ["AF", 4],
  ["ZF", 6],
  ["SF", 7],
  ["TF", 8],
  ["IF", 9],
  ["DF", 10],
  ["OF", 11],
  ["NT", 14],
  ["RF", 16],
  ["VM", 17],
  ["AC", 18],
  ["VIF", 19],
  ["VIP", 20],
  ["ID", 21],
] as const; // deno-fmt-ignore

const MXCSR = [
  "IE", "DE", "ZE", "OE", "UE", "PE", "DAZ", "IM", "DM", "ZM", "OM", "UM", "PM", "FZ",
]; // deno-fmt-ignore

/** The target description gdb reads with `qXfer:features:read:target.xml`. */
export function targetXml(): string {
  const reg = (name: string, bits: number, type: string, group?: string) =>
    `<reg name="${name}" bitsize="${bits}" type="${type}"${group ? ` group="${group}"` : ""}/>`;
  const flag = (name: string, bit: number) => `<field name="${name}" start="${bit}" end="${bit}"/>`;
  const core = [
    `<flags id="i386_eflags" size="4">${EFLAGS.map(([n, b]) => flag(n, b)).join("")}</flags>`,
    ...GPR_ORDER.map((r) =>
      reg(r, 64, r === "rbp" || r === "rsp" ? "data_ptr" : "int64")
    ),
    reg("rip", 64, "code_ptr"),
    reg("eflags", 32, "i386_eflags"),
    ...["cs", "ss", "ds", "es", "fs", "gs"].map((s) => reg(s, 32, "int32")),
    ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => reg(`st${i}`, 80, "i387_ext")),
    ...["fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"].map((n) =>
      reg(n, 32, "int", "float")
    ),
  ];
  const vectors = [
    ["v8bf16", "bfloat16", 8], ["v8h", "ieee_half", 8], ["v4f", "ieee_single", 4],
    ["v2d", "ieee_double", 2], ["v16i8", "int8", 16], ["v8i16", "int16", 8],
    ["v4i32", "int32", 4], ["v2i64", "int64", 2],
  ] as const; // deno-fmt-ignore
  const union = [
    ["v8_bfloat16", "v8bf16"], ["v8_half", "v8h"], ["v4_float", "v4f"], ["v2_double", "v2d"],
    ["v16_int8", "v16i8"], ["v8_int16", "v8i16"], ["v4_int32", "v4i32"],
    ["v2_int64", "v2i64"], ["uint128", "uint128"],
  ]; // deno-fmt-ignore
  const sse = [
    ...vectors.map(([id, t, n]) => `<vector id="${id}" type="${t}" count="${n}"/>`),
    `<union id="vec128">${union.map(([n, t]) => `<field name="${n}" type="${t}"/>`).join("")}</union>`,
    `<flags id="i386_mxcsr" size="4">${MXCSR.map((n, i) => flag(n, i)).join("")}</flags>`,
    ...Array.from({ length: 16 }, (_, i) => reg(`xmm${i}`, 128, "vec128", "vector")),
    reg("mxcsr", 32, "i386_mxcsr", "vector"),
  ];
  const feature = (name: string, body: string[]) =>
    `<feature name="org.gnu.gdb.i386.${name}">${body.join("")}</feature>`;
  return `<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">` +
    `<target version="1.0"><architecture>i386:x86-64</architecture><osabi>GNU/Linux</osabi>` +
    feature("core", core) + feature("sse", sse) +
    feature("linux", [reg("orig_rax", 64, "int")]) +
    feature("segments", [reg("fs_base", 64, "int"), reg("gs_base", 64, "int")]) +
    `</target>`;
}
