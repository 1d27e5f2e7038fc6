/**
 * Known instruction boundaries, for syscall rewriting (`--rewrite=stub`):
 * the first byte of the function that holds an address, from the unwind
 * tables (`.eh_frame_hdr`'s sorted table, else a walk of `.eh_frame`) or
 * the symbol table, and a walk from there with {@linkcode insnLength}
 * that proves the five bytes before a `syscall` one whole instruction
 * (`mov $imm32, %eax`, b8 imm32, in the usual wrapper). Looking back from
 * the `syscall` is not enough: b8 there may be the ModRM of `8b b8
 * disp32` (mov disp32(%rax), %edi) or follow a REX prefix (`41 b8 imm32`,
 * mov to %r8d). The unwind tables and symbols are what the compiler and
 * linker wrote about where code starts; nothing here guesses one.
 * @module
 */
import { type ElfFile, PT_GNU_EH_FRAME, STT_FUNC } from "../loader/elf.ts";
import { readSections } from "../loader/sections.ts";
import { Cursor, offsetOf } from "../loader/dwarf.ts";
import { insnLength, relocatable } from "./x86len.ts";

/** A function's code: link-time addresses [start, end). */
export interface CodeSpan {
  start: number;
  end: number;
}

/** Function starts and ends found by walking `.eh_frame`, sorted by start. */
interface FdeTable {
  starts: Float64Array;
  ends: Float64Array;
}

const walked = new WeakMap<Uint8Array, FdeTable | null>();

/**
 * The function (unwind-table entry, else symbol) of `elf` (file `bytes`)
 * that holds link-time [addr, addr + len), or undefined when none is known.
 */
export function functionAround(
  bytes: Uint8Array,
  elf: ElfFile,
  addr: number,
  len: number,
): CodeSpan | undefined {
  const inside = (s: CodeSpan | undefined) =>
    s && s.start <= addr && addr + len <= s.end ? s : undefined;
  const hdr = elf.segments.find((s) => s.type === PT_GNU_EH_FRAME);
  if (hdr) {
    const s = inside(fromHeader(bytes, elf, hdr.offset, hdr.vaddr, addr));
    if (s) return s;
  } else {
    let table = walked.get(bytes);
    if (table === undefined) walked.set(bytes, table = walkEhFrame(bytes) ?? null);
    if (table) {
      const i = lastAtOrBelow(table.starts, addr);
      const s = i >= 0 ? inside({ start: table.starts[i], end: table.ends[i] }) : undefined;
      if (s) return s;
    }
  }
  return fromSymbols(elf, addr, len);
}

/** Index of the last element of sorted `a` that is <= `x`, or -1. */
function lastAtOrBelow(a: Float64Array, x: number): number {
  let lo = 0, hi = a.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] <= x) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** The FDE pointer encoding ('R') a CIE gives its FDEs (absptr without one). */
function cieEncoding(bytes: Uint8Array, at: number): number {
  const c = new Cursor(bytes, at);
  const len = c.u32();
  if (len === 0xffffffff) return -1; // 64-bit lengths: never seen in x86-64 eh_frame
  if (c.u32() !== 0) return -1; // not a CIE
  const version = c.u8();
  let aug = "";
  for (let ch = c.u8(); ch !== 0; ch = c.u8()) aug += String.fromCharCode(ch);
  if (version >= 4) c.pos += 2; // address and segment selector sizes
  c.uleb(); // code alignment
  c.uleb(); // data alignment (sleb128: only skipped)
  if (version === 1) c.u8();
  else c.uleb(); // return address register
  if (aug[0] !== "z") return aug === "" ? 0 : -1;
  c.uleb(); // augmentation data length
  for (const ch of aug.slice(1)) {
    if (ch === "R") return c.u8();
    if (ch === "L") c.u8();
    else if (ch === "P") c.encoded(c.u8());
    else if (ch !== "S" && ch !== "B" && ch !== "G") return -1;
  }
  return 0;
}

/** The start and end of the FDE at file offset `at`, whose pc_begin is known. */
function fdeRange(bytes: Uint8Array, at: number): number | undefined {
  const c = new Cursor(bytes, at);
  if (c.u32() === 0xffffffff) return undefined;
  const idAt = c.pos, id = c.u32();
  if (id === 0) return undefined;
  const enc = cieEncoding(bytes, idAt - id);
  if (enc < 0) return undefined;
  c.encoded(enc); // pc_begin (the table's initial location is the same)
  return c.encoded(enc & 0x0f); // pc_range: the format only, no base
}

/**
 * The FDE `.eh_frame_hdr`'s binary-search table gives for `addr`: the
 * last entry starting at or below it, with its end from the FDE itself.
 */
function fromHeader(
  bytes: Uint8Array,
  elf: ElfFile,
  hdrOff: number,
  hdrVaddr: number,
  addr: number,
): CodeSpan | undefined {
  try {
    const c = new Cursor(bytes, hdrOff);
    if (c.u8() !== 1) return undefined;
    const ptrEnc = c.u8(), countEnc = c.u8(), tableEnc = c.u8();
    // Only the layout every linker writes: a datarel sdata4 table.
    if (tableEnc !== 0x3b || ptrEnc === 0xff || countEnc === 0xff) return undefined;
    c.encoded(ptrEnc);
    const count = c.encoded(countEnc);
    const table = c.pos;
    if (count <= 0 || table + count * 8 > bytes.length) return undefined;
    const v = c.v;
    let lo = 0, hi = count - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (hdrVaddr + v.getInt32(table + mid * 8, true) <= addr) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return undefined;
    const start = hdrVaddr + v.getInt32(table + found * 8, true);
    const fde = offsetOf(elf, hdrVaddr + v.getInt32(table + found * 8 + 4, true));
    if (fde < 0) return undefined;
    const range = fdeRange(bytes, fde);
    return range === undefined || range <= 0 ? undefined : { start, end: start + range };
  } catch (e) {
    if (e instanceof RangeError) return undefined;
    throw e;
  }
}

/** Every FDE of the `.eh_frame` section (static binaries have no header), or undefined. */
function walkEhFrame(bytes: Uint8Array): FdeTable | undefined {
  const sec = readSections(bytes).find((s) => s.name === ".eh_frame" && s.type === 1);
  if (!sec || sec.offset + sec.size > bytes.length) return undefined;
  const spans: [number, number][] = [];
  const encodings = new Map<number, number>();
  try {
    for (let at = sec.offset; at + 4 <= sec.offset + sec.size;) {
      const c = new Cursor(bytes, at);
      const len = c.u32();
      if (len === 0) break; // terminator
      if (len === 0xffffffff) return undefined;
      const next = at + 4 + len;
      const idAt = c.pos, id = c.u32();
      if (id !== 0) {
        const cie = idAt - id;
        let enc = encodings.get(cie);
        if (enc === undefined) encodings.set(cie, enc = cieEncoding(bytes, cie));
        if (enc < 0) return undefined;
        if ((enc & 0x70) !== 0x10 && (enc & 0x70) !== 0) return undefined; // pcrel or absolute
        const fieldAddr = sec.addr + (c.pos - sec.offset);
        const begin = c.encoded(enc) + ((enc & 0x70) === 0x10 ? fieldAddr : 0);
        const range = c.encoded(enc & 0x0f);
        if (range > 0) spans.push([begin, begin + range]);
      }
      at = next;
    }
  } catch (e) {
    if (e instanceof RangeError) return undefined;
    throw e;
  }
  spans.sort((a, b) => a[0] - b[0]);
  return {
    starts: Float64Array.from(spans, (s) => s[0]),
    ends: Float64Array.from(spans, (s) => s[1]),
  };
}

/** A function symbol with a size that holds [addr, addr + len). */
function fromSymbols(elf: ElfFile, addr: number, len: number): CodeSpan | undefined {
  const syms = elf.symbols;
  let lo = 0, hi = syms.length - 1, i = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (syms[mid].value <= addr) {
      i = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  // Aliases share a start; a few steps back find a sized one.
  for (let n = 0; i >= 0 && n < 16; i--, n++) {
    const s = syms[i];
    if (s.type === STT_FUNC && s.size > 0 && s.value <= addr && addr + len <= s.value + s.size) {
      return { start: s.value, end: s.value + s.size };
    }
  }
  return undefined;
}

/** How a `syscall` site can be rewritten (see {@linkcode siteShape}). */
export interface SiteShape {
  /** The function that holds it. */
  fn: CodeSpan;
  /** Length of the instruction right before the `syscall`, 2 to 5 bytes. */
  len: number;
  /**
   * With `len` < 5: link addresses of 5-byte slots of padding that never
   * runs, within a short jump (rel8) of that instruction, nearest first.
   */
  pads: number[];
}

/** Whether the instruction at `b[at]` is a nop (90, 66 90, or 0f 1f /0 with prefixes). */
function isNop(b: Uint8Array, at: number, len: number): boolean {
  let i = at;
  while (i < at + len && (b[i] === 0x66 || b[i] === 0x2e)) i++;
  if (b[i] === 0x90) return i + 1 === at + len;
  return b[i] === 0x0f && b[i + 1] === 0x1f && ((b[i + 2] >> 3) & 7) === 0;
}

/** Whether control never falls through the instruction at `b[at]`: ret, jmp, ud2, hlt, int3. */
function endsFlow(b: Uint8Array, at: number, len: number): boolean {
  const op = b[at];
  if (len === 1 && (op === 0xc3 || op === 0xf4 || op === 0xcc)) return true;
  if ((len === 3 && op === 0xc2) || (len === 5 && op === 0xe9) || (len === 2 && op === 0xeb)) {
    return true;
  }
  return len === 2 && op === 0x0f && b[at + 1] === 0x0b;
}

/**
 * Functions that never return, by the names the C library and the
 * compiler's runtime give them: a call to one is where a function's code
 * ends (`call __stack_chk_fail` is the last instruction of every function
 * built with a stack protector).
 */
const NORETURN = new Set([
  "__stack_chk_fail",
  "__stack_chk_fail_local",
  "abort",
  "exit",
  "_exit",
  "_Exit",
  "__assert_fail",
  "__chk_fail",
  "__fortify_fail",
  "__libc_fatal",
]);

/** Whether `b[at]` is a direct call to a function {@linkcode NORETURN} names. */
function noReturnCall(
  b: Uint8Array,
  elf: ElfFile,
  at: number,
  len: number,
  toLink: (off: number) => number,
): boolean {
  const t = b[at] === 0xe8 && len === 5 ? branchTarget(b, at, len) : -1;
  const callee = t < 0 ? undefined : elf.symbolize(toLink(t));
  return callee?.offset === 0 && NORETURN.has(callee.name);
}

/** The target of a direct jump, conditional jump or call at `b[at]` (file offsets), or -1. */
function branchTarget(b: Uint8Array, at: number, len: number): number {
  const op = b[at], next = at + len;
  if ((op >= 0x70 && op <= 0x7f) || op === 0xeb || (op >= 0xe0 && op <= 0xe3)) {
    return len === 2 ? next + ((b[at + 1] << 24) >> 24) : -1;
  }
  const rel32 = () => b[next - 4] | b[next - 3] << 8 | b[next - 2] << 16 | b[next - 1] << 24;
  if ((op === 0xe8 || op === 0xe9) && len === 5) return next + rel32();
  if (op === 0x0f && (b[at + 1] & 0xf0) === 0x80 && len === 6) return next + rel32();
  return -1;
}

/**
 * Decodes `fn` from its start up to link-time `site`: where the function
 * and the instruction before the `syscall` there lie in the file, if that
 * instruction is whole, 2 to 5 bytes long and able to run elsewhere.
 */
function walkTo(
  bytes: Uint8Array,
  elf: ElfFile,
  fn: CodeSpan,
  site: number,
): { base: number; end: number; before: number; len: number } | undefined {
  const base = offsetOf(elf, fn.start);
  // The whole function must lie in one segment's file bytes.
  if (base < 0 || offsetOf(elf, fn.end - 1) !== base + fn.end - 1 - fn.start) return undefined;
  if (site <= fn.start) return undefined;
  const target = base + (site - fn.start), end = base + (fn.end - fn.start);
  let at = base, before = -1;
  while (at < target) {
    const n = insnLength(bytes, at, end);
    if (n < 0) return undefined;
    before = at;
    at += n;
  }
  const len = at - before;
  if (at !== target || bytes[at] !== 0x0f || bytes[at + 1] !== 0x05) return undefined;
  if (len < 2 || len > 5 || !relocatable(bytes, before, len)) return undefined;
  return { base, end, before, len };
}

/**
 * Whether `shape` (remembered from an earlier run) still holds for the
 * `syscall` at link-time `site`: decoding from its function's start
 * reaches the site, and the instruction before it has `shape.len` bytes.
 */
export function shapeHolds(
  bytes: Uint8Array,
  elf: ElfFile,
  site: number,
  shape: SiteShape,
): boolean {
  return walkTo(bytes, elf, shape.fn, site)?.len === shape.len;
}

/**
 * Whether and how the `syscall` at link-time `site` of `elf` can be
 * rewritten: the instruction right before it must be whole (decoding the
 * file's bytes from the start of the function that holds both reaches it
 * exactly), 2 to 5 bytes long, and able to run elsewhere (a stub). A
 * 5-byte one makes room for a jmp to the stub itself; a shorter one (`xor
 * %eax, %eax` in glibc's `read`) for a short jump to 5 bytes of padding
 * in the same function that never run: nops after a ret, jmp or ud2 that
 * no direct jump in the function lands in (alignment before a label).
 */
export function siteShape(bytes: Uint8Array, elf: ElfFile, site: number): SiteShape | undefined {
  const fn = functionAround(bytes, elf, site - 2, 4);
  if (!fn) return undefined;
  const walked = walkTo(bytes, elf, fn, site);
  if (!walked) return undefined;
  const { base, end, before, len } = walked;
  let at: number;
  const toLink = (off: number) => off - base + fn.start;
  if (len === 5) return { fn, len, pads: [] };
  // The rest of the function: padding that never runs, and where jumps land.
  const runs: [number, number][] = [], targets: number[] = [];
  let prevEnds = false, run = -1, lastAt = -1;
  for (at = base; at < end;) {
    const n = insnLength(bytes, at, end);
    if (n < 0) break;
    const nop = isNop(bytes, at, n);
    if (nop && run < 0 && prevEnds) run = at;
    if (!nop && run >= 0) {
      runs.push([run, at]);
      run = -1;
    }
    if (!nop) {
      prevEnds = endsFlow(bytes, at, n);
      lastAt = at;
    }
    const t = branchTarget(bytes, at, n);
    if (t >= 0) targets.push(t);
    at += n;
  }
  if (run >= 0) runs.push([run, end]);
  const from = before + 2; // where the short jump's rel8 counts from
  const pads: number[] = [];
  const slots = (s: number, e: number) => {
    if (targets.some((t) => t >= s && t < e)) return;
    for (let p = s; p + 5 <= e; p += 5) {
      if (p - from >= -128 && p - from <= 127) pads.push(toLink(p));
    }
  };
  for (const [s, e] of runs) slots(s, e);
  // None inside: past the function's end, up to the next 16-byte boundary,
  // the linker's alignment of the next function, nops no function's table
  // or symbol holds. Dead when the function's code ends in a ret, jmp or
  // call that never returns (musl's `syscall()`: its one site follows a
  // 4-byte mov). Looked at last: the symbols cost milliseconds to read the
  // first time for a library.
  if (!pads.length && at === end) {
    let gapEnd = end;
    while (gapEnd < bytes.length && (toLink(gapEnd) & 15) !== 0) {
      const n = insnLength(bytes, gapEnd, bytes.length);
      if (n < 0 || !isNop(bytes, gapEnd, n)) break;
      gapEnd += n;
    }
    let gap = gapEnd - end >= 5 && (toLink(gapEnd) & 15) === 0 &&
      offsetOf(elf, toLink(gapEnd - 1)) === gapEnd - 1 && end - from <= 127;
    gap &&= prevEnds || (lastAt >= 0 && noReturnCall(bytes, elf, lastAt, end - lastAt, toLink));
    for (let p = end; gap && p < gapEnd; p++) gap = !functionAround(bytes, elf, toLink(p), 1);
    if (gap) slots(end, gapEnd);
  }
  pads.sort((a, b) => Math.abs(a - site) - Math.abs(b - site));
  return pads.length ? { fn, len, pads } : undefined;
}
