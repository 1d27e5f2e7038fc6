/**
 * Call stacks from `.eh_frame` (DWARF call frame information, as the
 * x86-64 psABI makes every object carry): for a pc, the FDE that covers
 * it (found through `.eh_frame_hdr`'s binary-search table) and its CIE
 * give rules to find the caller's frame: the CFA as rsp or rbp plus an
 * offset, the return address and rbp saved at offsets from it. This
 * follows the stacks of code built without frame pointers (Debian's
 * libraries, python3), where the rbp chain breaks at the first frame.
 * Only what compilers emit for ordinary code is read; an FDE with DWARF
 * expressions (PLT stubs, signal frames) ends the walk there, and the
 * caller falls back to the rbp chain. Every read is bounds-checked: the
 * file's bytes and the stack copy are both untrusted.
 * @module
 */
import { type ElfFile, PT_GNU_EH_FRAME } from "../loader/elf.ts";
import { readSections } from "../loader/sections.ts";
import { Cursor, offsetOf, vaddrOf } from "../loader/dwarf.ts";

/** Where the caller's frame is, at one pc: what a CFI row says. */
export interface FrameRule {
  /** The CFA's base register (DWARF numbers: 7 rsp, 6 rbp). */
  cfaReg: number;
  /** Added to it. */
  cfaOffset: number;
  /** The return address is at CFA + this. */
  raOffset: number;
  /** rbp was saved at CFA + this (undefined: it still holds the caller's). */
  rbpOffset?: number;
}

const RSP = 7, RBP = 6, RA = 16;

/** FDE starts (link-time) and file offsets, sorted, of files with no `.eh_frame_hdr`. */
const walked = new WeakMap<Uint8Array, { starts: Float64Array; fdes: Float64Array } | null>();

/** Every FDE of the `.eh_frame` section (static programs often have no header). */
function walkEhFrame(bytes: Uint8Array) {
  const sec = readSections(bytes).find((s) => s.name === ".eh_frame" && s.type === 1);
  if (!sec || sec.offset + sec.size > bytes.length) return null;
  const found: [number, number][] = [];
  const encodings = new Map<number, number>();
  try {
    for (let at = sec.offset; at + 4 <= sec.offset + sec.size;) {
      const c = new Cursor(bytes, at);
      const len = c.u32();
      if (len === 0 || len === 0xffffffff) break;
      const idAt = c.pos, id = c.u32();
      if (id !== 0) {
        const cie = idAt - id;
        let enc = encodings.get(cie);
        if (enc === undefined) encodings.set(cie, enc = readCie(bytes, cie)?.enc ?? -1);
        if (enc >= 0) found.push([c.encoded(enc, sec.addr + (c.pos - sec.offset)), at]);
      }
      at += 4 + len;
    }
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
  }
  found.sort((a, b) => a[0] - b[0]);
  return {
    starts: Float64Array.from(found, (f) => f[0]),
    fdes: Float64Array.from(found, (f) => f[1]),
  };
}

/** The file offset of the FDE for link-time `pc` (the last starting at or below it), or -1. */
function fdeFor(bytes: Uint8Array, elf: ElfFile, pc: number): number {
  const hdr = elf.segments.find((s) => s.type === PT_GNU_EH_FRAME);
  if (!hdr) {
    let table = walked.get(bytes);
    if (table === undefined) walked.set(bytes, table = walkEhFrame(bytes));
    if (!table) return -1;
    let lo = 0, hi = table.starts.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (table.starts[mid] <= pc) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? -1 : table.fdes[found];
  }
  const c = new Cursor(bytes, hdr.offset);
  if (c.u8() !== 1) return -1;
  const ptrEnc = c.u8(), countEnc = c.u8(), tableEnc = c.u8();
  if (tableEnc !== 0x3b || ptrEnc === 0xff || countEnc === 0xff) return -1;
  c.encoded(ptrEnc, hdr.vaddr + 4);
  const count = c.encoded(countEnc, hdr.vaddr + (c.pos - hdr.offset));
  const table = c.pos;
  if (count <= 0 || table + count * 8 > bytes.length) return -1;
  let lo = 0, hi = count - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (hdr.vaddr + c.v.getInt32(table + mid * 8, true) <= pc) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found < 0 ? -1 : offsetOf(elf, hdr.vaddr + c.v.getInt32(table + found * 8 + 4, true));
}

interface Row {
  cfaReg: number;
  cfaOffset: number;
  /** Saved-at offsets from the CFA, by DWARF register; undefined: same value. */
  saved: Map<number, number>;
}

/** Runs CFA instructions in [at, end) until the location passes `pc`. */
function run(
  c: Cursor,
  end: number,
  row: Row,
  init: Row | undefined,
  loc: number,
  pc: number,
  codeAlign: number,
  dataAlign: number,
): boolean {
  const stack: Row[] = [];
  const copy = (r: Row): Row => ({ ...r, saved: new Map(r.saved) });
  while (c.pos < end) {
    const op = c.u8(), low = op & 0x3f;
    let advance = -1;
    switch (op >> 6) {
      case 1:
        advance = low * codeAlign;
        break;
      case 2:
        row.saved.set(low, c.uleb() * dataAlign);
        continue;
      case 3:
        if (init?.saved.has(low)) row.saved.set(low, init.saved.get(low)!);
        else row.saved.delete(low);
        continue;
    }
    if (advance < 0) {
      switch (op) {
        case 0x00:
          continue;
        case 0x01: // set_loc: not what compilers emit for x86-64
          return false;
        case 0x02:
          advance = c.u8() * codeAlign;
          break;
        case 0x03:
          advance = c.u16() * codeAlign;
          break;
        case 0x04:
          advance = c.u32() * codeAlign;
          break;
        case 0x05: { // offset_extended
          const r = c.uleb();
          row.saved.set(r, c.uleb() * dataAlign);
          continue;
        }
        case 0x06: // restore_extended
        case 0x07: // undefined
        case 0x08: { // same_value
          const r = c.uleb();
          if (op === 0x06 && init?.saved.has(r)) row.saved.set(r, init.saved.get(r)!);
          else row.saved.delete(r);
          if (op === 0x07 && r === RA) return false; // the outermost frame
          continue;
        }
        case 0x09: // register: a value in another register; not followed
          c.uleb();
          c.uleb();
          return false;
        case 0x0a:
          stack.push(copy(row));
          continue;
        case 0x0b: {
          const r = stack.pop();
          if (!r) return false;
          row.cfaReg = r.cfaReg;
          row.cfaOffset = r.cfaOffset;
          row.saved = r.saved;
          continue;
        }
        case 0x0c:
          row.cfaReg = c.uleb();
          row.cfaOffset = c.uleb();
          continue;
        case 0x0d:
          row.cfaReg = c.uleb();
          continue;
        case 0x0e:
          row.cfaOffset = c.uleb();
          continue;
        case 0x11: { // offset_extended_sf
          const r = c.uleb();
          row.saved.set(r, c.sleb() * dataAlign);
          continue;
        }
        case 0x12:
          row.cfaReg = c.uleb();
          row.cfaOffset = c.sleb() * dataAlign;
          continue;
        case 0x13:
          row.cfaOffset = c.sleb() * dataAlign;
          continue;
        case 0x2e: // GNU_args_size
          c.uleb();
          continue;
        default: // expressions (PLT, signal frames) and the rest: not followed
          return false;
      }
    }
    loc += advance;
    if (loc > pc) return true;
  }
  return true;
}

/** The CIE at file offset `at`: its alignments, FDE pointer encoding and initial instructions. */
function readCie(bytes: Uint8Array, at: number) {
  const c = new Cursor(bytes, at);
  const len = c.u32();
  if (len === 0 || len === 0xffffffff) return undefined;
  const end = c.pos + len;
  if (c.u32() !== 0) return undefined;
  const version = c.u8();
  let aug = "";
  for (let ch = c.u8(); ch !== 0; ch = c.u8()) aug += String.fromCharCode(ch);
  if (version >= 4) c.pos += 2;
  const codeAlign = c.uleb(), dataAlign = c.sleb();
  const ra = version === 1 ? c.u8() : c.uleb();
  let enc = 0;
  if (aug[0] === "z") {
    const augLen = c.uleb(), augEnd = c.pos + augLen;
    for (const ch of aug.slice(1)) {
      if (ch === "R") enc = c.u8();
      else if (ch === "L") c.u8();
      else if (ch === "P") {
        const penc = c.u8();
        c.encoded(penc & 0x0f, 0);
      } else if (ch === "S") return undefined; // a signal frame
      else if (ch !== "B" && ch !== "G") return undefined;
    }
    c.pos = augEnd;
  } else if (aug !== "") return undefined;
  if (ra !== RA || end > bytes.length) return undefined;
  return { codeAlign, dataAlign, enc, hasAug: aug[0] === "z", insns: c.pos, end };
}

/**
 * The frame rule at link-time `pc` of `elf` (file `bytes`), from its
 * `.eh_frame`; undefined where there is none or it is more than offsets.
 */
export function frameRuleAt(bytes: Uint8Array, elf: ElfFile, pc: number): FrameRule | undefined {
  try {
    const fde = fdeFor(bytes, elf, pc);
    if (fde < 0) return undefined;
    const c = new Cursor(bytes, fde);
    const len = c.u32();
    if (len === 0 || len === 0xffffffff) return undefined;
    const end = c.pos + len;
    const idAt = c.pos, id = c.u32();
    if (id === 0 || end > bytes.length) return undefined;
    const cie = readCie(bytes, idAt - id);
    if (!cie) return undefined;
    const begin = c.encoded(cie.enc, vaddrOf(elf, c.pos));
    const range = c.encoded(cie.enc & 0x0f, 0);
    if (pc < begin || pc >= begin + range) return undefined;
    if (cie.hasAug) c.pos += c.uleb();
    const row: Row = { cfaReg: RSP, cfaOffset: 8, saved: new Map() };
    const ci = new Cursor(bytes, cie.insns, cie.end);
    if (!run(ci, cie.end, row, undefined, begin, Infinity, cie.codeAlign, cie.dataAlign)) {
      return undefined;
    }
    const init: Row = { ...row, saved: new Map(row.saved) };
    const fc = new Cursor(bytes, c.pos, end);
    if (!run(fc, end, row, init, begin, pc, cie.codeAlign, cie.dataAlign)) return undefined;
    if (row.cfaReg !== RSP && row.cfaReg !== RBP) return undefined;
    const raOffset = row.saved.get(RA);
    if (raOffset === undefined) return undefined;
    return {
      cfaReg: row.cfaReg,
      cfaOffset: row.cfaOffset,
      raOffset,
      rbpOffset: row.saved.get(RBP),
    };
  } catch (e) {
    if (e instanceof RangeError) return undefined;
    throw e;
  }
}
