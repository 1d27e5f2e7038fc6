/**
 * Crash reports: a CPU exception in the guest becomes the Linux signal it
 * would have raised, with rip, the symbol from the ELF, the faulting
 * address and a best-effort backtrace.
 * @module
 */
import type { ElfFile } from "../loader/elf.ts";
import { SI, type SigInfo, SIGNO } from "../syscalls/signal.ts";
import { PF_X, PT_LOAD } from "../loader/elf.ts";
import type { GuestMemory } from "./memory.ts";

/** Linux signal numbers (the full table lives with the signal syscalls). */
export const SIG = SIGNO;

/** Signal names by number, e.g. `SIGNAL_NAMES[11] === "SIGSEGV"`. */
export const SIGNAL_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(SIGNO).map(([name, n]) => [n, name]),
);

const VECTORS: Record<number, [string, number]> = {
  0: ["divide error", SIG.SIGFPE],
  1: ["debug trap", SIG.SIGTRAP],
  3: ["breakpoint", SIG.SIGTRAP],
  4: ["overflow", SIG.SIGSEGV],
  5: ["bound range exceeded", SIG.SIGSEGV],
  6: ["invalid opcode", SIG.SIGILL],
  7: ["device not available", SIG.SIGSEGV],
  8: ["double fault", SIG.SIGSEGV],
  10: ["invalid TSS", SIG.SIGSEGV],
  11: ["segment not present", SIG.SIGBUS],
  12: ["stack-segment fault", SIG.SIGBUS],
  13: ["general protection fault", SIG.SIGSEGV],
  14: ["page fault", SIG.SIGSEGV],
  16: ["x87 floating-point error", SIG.SIGFPE],
  17: ["alignment check", SIG.SIGBUS],
  19: ["SIMD floating-point error", SIG.SIGFPE],
}; // deno-fmt-ignore

/** The signal CPU exception `vector` raises (SIGSEGV for the unusual ones). */
export function vectorSignal(vector: number): number {
  return VECTORS[vector]?.[1] ?? SIG.SIGSEGV;
}

/** Exception vectors for which the CPU pushes an error code. */
export const HAS_ERROR_CODE = new Set([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);

/** What ended a guest that crashed. */
export interface CrashReport {
  /** The Linux signal that kills the process. */
  signal: number;
  /** What happened, e.g. "page fault: write to unmapped address". */
  description: string;
  /** Guest instruction pointer. */
  rip: number;
  /** Guest stack pointer. */
  rsp: number;
  /** Faulting address for page faults. */
  address?: number;
  /** `symbol+0xoff` of rip, when known. */
  symbol?: string;
  /** Symbolised return addresses found on the stack, innermost first. */
  backtrace: string[];
}

/** One loaded ELF object: the program, the interpreter or a library. */
export interface LoadedObject {
  /** Its ELF file. */
  elf: ElfFile;
  /** Its load bias. */
  base: number;
  /** Its name in reports, for objects other than the program. */
  name?: string;
  /** The file's bytes, when read (for its unwind tables). */
  bytes?: Uint8Array;
}

/** The loaded objects, for symbols and code ranges: the program first. */
export interface Symbolizer {
  /** Every object; the first is the program. */
  objects: readonly LoadedObject[];
}

function inSegment(o: LoadedObject, addr: number, code: boolean): boolean {
  return o.elf.segments.some((seg) =>
    seg.type === PT_LOAD && (!code || seg.flags & PF_X) && addr >= o.base + seg.vaddr &&
    addr < o.base + seg.vaddr + seg.memsz
  );
}

/** `name+0xoff` for a guest address (with ` in lib` outside the program), or undefined. */
export function symbolize(s: Symbolizer, addr: number): string | undefined {
  const o = s.objects.find((o) => inSegment(o, addr, false));
  if (!o) return undefined;
  const hit = o.elf.symbolize(addr - o.base);
  const where = o.name ? ` in ${o.name}` : "";
  if (!hit) return o.name ? `${o.name}+0x${(addr - o.base).toString(16)}` : undefined;
  return (hit.offset ? `${hit.name}+0x${hit.offset.toString(16)}` : hit.name) + where;
}

function inCode(s: Symbolizer, addr: number): boolean {
  return s.objects.some((o) => inSegment(o, addr, true));
}

function symbolOffset(s: Symbolizer, addr: number): number | undefined {
  const o = s.objects.find((o) => inSegment(o, addr, true));
  return o?.elf.symbolize(addr - o.base)?.offset;
}

/** Whether the bytes before `ret` look like a call instruction. */
function afterCall(mem: GuestMemory, ret: number): boolean {
  const b = (i: number) => mem.bytes[ret - i];
  if (b(5) === 0xe8) return true; // call rel32
  for (const len of [2, 3, 4, 6, 7]) { // call r/m64 (ff /2)
    if (b(len) === 0xff && ((b(len - 1) >> 3) & 7) === 2) return true;
    if (b(len + 1) === 0x41 && b(len) === 0xff && ((b(len - 1) >> 3) & 7) === 2) return true;
  }
  return false;
}

/** Scans the stack for return addresses into code of the loaded objects. */
export function backtrace(mem: GuestMemory, s: Symbolizer, rsp: number, max = 16): string[] {
  const out: string[] = [];
  for (let p = rsp; p + 8 <= mem.size && p < rsp + 8192 && out.length < max; p += 8) {
    if (p < 0) break;
    const v = Number(mem.view.getBigUint64(p, true));
    // A return address follows a call and is never a function's first byte.
    if (v > 7 && inCode(s, v) && afterCall(mem, v) && symbolOffset(s, v) !== 0) {
      const sym = symbolize(s, v);
      out.push(`0x${v.toString(16)}${sym ? ` <${sym}>` : ""}`);
    }
  }
  return out;
}

/** Builds the report for CPU exception `vector`. */
export function crashFromException(
  vector: number,
  errorCode: number,
  rip: number,
  rsp: number,
  cr2: number,
  mem: GuestMemory,
  s: Symbolizer,
): CrashReport {
  const [what, signal] = VECTORS[vector] ?? [`exception ${vector}`, SIG.SIGSEGV];
  let description = what;
  let address: number | undefined;
  if (vector === 14) {
    address = cr2;
    const kind = errorCode & 0x10 ? "execute" : errorCode & 2 ? "write" : "read";
    const why = errorCode & 1 ? "protection violation" : "unmapped address";
    description = `page fault: ${kind} at ${why} 0x${cr2.toString(16)}`;
  } else if (HAS_ERROR_CODE.has(vector) && errorCode) {
    description += ` (error code 0x${errorCode.toString(16)})`;
  }
  return {
    signal,
    description,
    rip,
    rsp,
    address,
    symbol: symbolize(s, rip),
    backtrace: backtrace(mem, s, rsp),
  };
}

/** The report as printed on stderr, one fact per line. */
export function formatCrash(r: CrashReport): string {
  const lines = [
    `hermitux: guest killed by ${SIGNAL_NAMES[r.signal] ?? `signal ${r.signal}`}: ${r.description}`,
    `  rip 0x${r.rip.toString(16)}${r.symbol ? ` <${r.symbol}>` : ""}  rsp 0x${r.rsp.toString(16)}${
      r.address !== undefined ? `  address 0x${r.address.toString(16)}` : ""
    }`,
  ];
  if (r.backtrace.length) lines.push("  backtrace:", ...r.backtrace.map((f) => `    ${f}`));
  return lines.join("\n");
}

const SI_CODE_NAMES: Record<number, string> = {
  0: "SI_USER",
  0x80: "SI_KERNEL",
  [-1]: "SI_QUEUE",
  [-6]: "SI_TKILL",
};

/** A delivered signal, as strace shows it. */
export function formatSignal(i: SigInfo): string {
  const name = SIGNAL_NAMES[i.signo] ?? `SIGRT_${i.signo - 32}`;
  const parts = [`si_signo=${name}`, `si_code=${SI_CODE_NAMES[i.code] ?? i.code}`];
  if (i.addr !== undefined) parts.push(`si_addr=0x${i.addr.toString(16)}`);
  else if (i.pid !== undefined && i.code !== SI.KERNEL) {
    parts.push(`si_pid=${i.pid}`, `si_uid=${i.uid ?? 0}`);
  }
  return `--- ${name} {${parts.join(", ")}} ---`;
}
