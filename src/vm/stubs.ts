/**
 * `--rewrite=stub`'s host side (docs/REWRITING.md; the guest half is
 * src/kernel/stub.c). When a `syscall` traps for the first time at a
 * site, the guest kernel asks (HC_REWRITE); the host says yes only when
 * the instruction right before it is proved whole from the code's unwind
 * tables or symbols, 2 to 5 bytes long and able to run elsewhere
 * (src/analysis/boundary.ts), and writes the stub that runs it and enters
 * the guest kernel. The guest then puts a jump to the stub in place of that
 * instruction (a 5-byte jmp, or a short jump to a 5-byte jmp in padding
 * that never runs) and a `ud2` in place of the `syscall`. A jump onto such
 * a `ud2` is served here as the syscall it replaced; a fault in a stub's
 * copy of an instruction shows at the instruction's own address.
 * @module
 */
import { ABI, REGION } from "../kernel/abi.ts";
import { type ElfFile, PF_X, PT_LOAD } from "../loader/elf.ts";
import { cachedSiteShape } from "../analysis/shapecache.ts";
import { fileMappings } from "../syscalls/mm.ts";
import type { GuestMemory } from "./memory.ts";
import { physOf } from "./percpu.ts";
import { R } from "./sigframe.ts";
import { setRegs } from "./machine.ts";
import type { Guest } from "./guest.ts";
import { fileAt, guestRegionAt, readGuestElf } from "./program.ts";

/** Code the rewriter may look at: a file's bytes, and where it is in guest memory. */
interface CodeFile {
  bytes: Uint8Array;
  elf: ElfFile;
  /** Guest address minus link-time address. */
  bias: number;
  /** Guest addresses [lo, hi) where this file's executable segment shows with that bias. */
  lo: number;
  hi: number;
}

/** The file whose executable segment holds guest address `at`, if any. */
function codeFileAt(g: Guest, at: number): CodeFile | undefined {
  const exec = (elf: ElfFile, vaddr: number) =>
    elf.segments.find((s) =>
      s.type === PT_LOAD && (s.flags & PF_X) !== 0 && vaddr >= s.vaddr &&
      vaddr < s.vaddr + s.filesz
    );
  // The program and its interpreter, which the host loaded.
  for (const o of g.objects) {
    const seg = o.bytes && exec(o.elf, at - o.base);
    if (seg) {
      const lo = o.base + seg.vaddr;
      return { bytes: o.bytes!, elf: o.elf, bias: o.base, lo, hi: lo + seg.filesz };
    }
  }
  // A library ld.so mapped: a private file mapping with PROT_EXEC.
  const v = g.mem!.view, r = guestRegionAt(g.mem!, g.kernel!.mm, at);
  if (!r || !v.getUint8(r.at + REGION.file)) return undefined;
  if (v.getUint8(r.at + REGION.shared) || !(v.getUint8(r.at + REGION.prot) & 4)) return undefined;
  const f = fileAt(fileMappings(g.process!), at);
  if (!f?.path) return undefined;
  let file = g.codeFiles.get(f.path);
  if (file === undefined) {
    try {
      file = readGuestElf(g.process!.mounts, f.path, "/");
    } catch {
      file = null; // not an ELF file we can read: its sites keep trapping
    }
    g.codeFiles.set(f.path, file);
  }
  if (!file) return undefined;
  const off = f.offset + at - f.start;
  const seg = file.elf.segments.find((s) =>
    s.type === PT_LOAD && (s.flags & PF_X) !== 0 && off >= s.offset && off < s.offset + s.filesz
  );
  if (!seg) return undefined;
  const bias = at - (off - seg.offset + seg.vaddr);
  const lo = Math.max(r.start, f.start, bias + seg.vaddr);
  const hi = Math.min(r.end, f.end, bias + seg.vaddr + seg.filesz);
  return { ...file, bias, lo, hi };
}

/**
 * Whether guest [lo, hi) holds what the file does, but for this
 * rewriter's own changes, which keep every instruction boundary: a ud2
 * over a syscall, a jmp to a stub (over an instruction or padding), a
 * short jump to such a jmp (over an instruction's first two bytes).
 */
function sameCode(mem: GuestMemory, file: CodeFile, lo: number, hi: number): boolean {
  const g = mem.bytes, f = file.bytes, d = shift(file, lo);
  for (let a = lo; a < hi; a++) {
    if (g[a] === f[a - d]) continue;
    if (g[a] === 0x0b && f[a - d] === 0x05 && g[a - 1] === 0x0f && f[a - d - 1] === 0x0f) continue;
    if (g[a] === 0xe9 && a + 5 <= hi && stubAt(mem, a + 5 + mem.view.getInt32(a + 1, true))) {
      a += 4;
      continue;
    }
    if (g[a] === 0xeb && a + 2 <= hi && padJump(mem, a)) {
      a += 1;
      continue;
    }
    return false;
  }
  return true;
}

/** Whether a stub slot starts at `stub` (its `mov $ret, %ecx` in place). */
function stubAt(mem: GuestMemory, stub: number): boolean {
  return stub >= ABI.STUB_FIRST && stub + ABI.STUB_SIZE <= ABI.STUB_END &&
    (stub - ABI.STUB_FIRST) % ABI.STUB_SIZE === 0 && mem.bytes[stub + 5] === 0xb9;
}

/** The stub a short jump at `at` reaches through a jmp in padding, or 0. */
function padJump(mem: GuestMemory, at: number): number {
  const pad = at + 2 + ((mem.bytes[at + 1] << 24) >> 24);
  if (pad < ABI.USER_MIN || pad + 5 > mem.userEnd || mem.bytes[pad] !== 0xe9) return 0;
  const stub = pad + 5 + mem.view.getInt32(pad + 1, true);
  return stubAt(mem, stub) ? stub : 0;
}

/**
 * HC_REWRITE: may the `syscall` at guest `site` (it just trapped) and the
 * instruction before it become a jump to a stub and a `ud2`? If so, writes
 * the stub (that instruction, `mov $(site + 2), %ecx`, `jmp stub_entry`)
 * in a free slot and, for an instruction shorter than 5 bytes, a jmp to it
 * in padding; returns what the guest kernel needs to put the jump in place
 * (see stub.c): the stub's address, bit 0 set when it may write however
 * the bytes are aligned (no other thread could see a torn write; else they
 * must lie in one aligned 16-byte block), the instruction's length in bits
 * 32-39 and a short jump's rel8 in bits 40-47. 0: no.
 */
export function serveRewrite(g: Guest, site: number): number {
  const mem = g.mem!, b = mem.bytes;
  g.rewriteAsked++;
  if (!Number.isSafeInteger(site) || site - 5 < ABI.USER_MIN || site + 2 > mem.userEnd) return 0;
  if (b[site] !== 0x0f || b[site + 1] !== 0x05 || site + 2 > 0xffffffff) return 0;
  const file = codeFileAt(g, site);
  if (!file) return 0;
  const shape = cachedSiteShape(file.bytes, file.elf, site - file.bias);
  if (!shape) return 0;
  const lo = shape.fn.start + file.bias, hi = shape.fn.end + file.bias;
  if (lo < file.lo || hi > file.hi) return 0;
  if (mem.overlays.list.some((o) => o.start < hi && lo < o.end)) return 0;
  // The function must be what the file holds (its boundaries are the file's).
  if (!sameCode(mem, file, lo, shape.len === 5 ? site + 2 : hi)) return 0;
  const at = site - shape.len, n = shape.len === 5 ? 5 : 2;
  const anyAlign = (at & 15) + n > 16;
  if (anyAlign && (g.threads?.count ?? 1) !== 1) return 0;
  // Padding still as the file has it (another site may have taken a slot).
  const f = file.bytes, d = shift(file, site);
  // It may lie just past the function (alignment before the next one): still in this file's code.
  const pad = shape.pads.map((p) => p + file.bias).find((p) => {
    if (p + 5 > file.hi || mem.overlays.list.some((o) => o.start < p + 5 && p < o.end)) {
      return false;
    }
    for (let k = 0; k < 5; k++) if (b[p + k] !== f[p + k - d]) return false;
    return true;
  });
  if (shape.len < 5 && pad === undefined) return 0;
  // A free slot: the count is the host's (host calls are served one at a time).
  const slots = mem.view.getUint32(ABI.STUB_ADDR, true);
  const stub = ABI.STUB_FIRST + slots * ABI.STUB_SIZE;
  if (stub + ABI.STUB_SIZE > ABI.STUB_END) return 0;
  // A rel32 reaches ±2 GiB: all of guest RAM today (at most 2 GiB, all of the address space).
  if (site - stub > 0x7fffffff || (pad !== undefined && pad + 5 - stub > 0x7fffffff)) return 0;
  mem.view.setUint32(ABI.STUB_ADDR, slots + 1, true);
  b.fill(0x90, stub, stub + 5); // the instruction (no rip-relative operand), then nops
  b.copyWithin(stub, at, site);
  b[stub + 5] = 0xb9; // mov $(site + 2), %ecx
  mem.view.setUint32(stub + 6, site + 2, true);
  b[stub + 10] = 0xe9; // jmp stub_entry
  mem.view.setInt32(stub + 11, g.kernel!.stubEntry - (stub + 15), true);
  b[stub + 15] = 0xcc;
  let rel8 = 0;
  if (pad !== undefined) {
    // Nothing runs this padding: a plain write. The guest's short jump comes after.
    b[pad] = 0xe9;
    mem.view.setInt32(pad + 1, stub - (pad + 5), true);
    rel8 = (pad - (at + 2)) & 0xff;
  }
  return stub + (anyAlign ? 1 : 0) + shape.len * 2 ** 32 + rel8 * 2 ** 40;
}

/** Guest address minus file offset in the executable segment that shows guest `at`. */
function shift(file: CodeFile, at: number): number {
  const vaddr = at - file.bias;
  const s = file.elf.segments.find((s) =>
    s.type === PT_LOAD && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz
  )!;
  return file.bias + s.vaddr - s.offset;
}

/**
 * The stub of the rewritten site whose `syscall` was at guest `site`, and
 * the address of the instruction it replaced; undefined if `site` is none.
 */
function rewritten(mem: GuestMemory, site: number): { stub: number; at: number } | undefined {
  if (site - 5 < ABI.USER_MIN || site + 2 > mem.userEnd) return undefined;
  const b = mem.bytes;
  const ret = (stub: number) =>
    stubAt(mem, stub) && mem.view.getUint32(stub + 6, true) === site + 2;
  if (b[site - 5] === 0xe9) {
    const stub = site + mem.view.getInt32(site - 4, true);
    if (ret(stub)) return { stub, at: site - 5 };
  }
  for (let len = 2; len < 5; len++) {
    const stub = b[site - len] === 0xeb ? padJump(mem, site - len) : 0;
    if (stub && ret(stub)) return { stub, at: site - len };
  }
  return undefined;
}

/**
 * A #UD at a rewritten site's `ud2` (something jumped onto the old
 * `syscall`, or a restart after a signal): enter the guest kernel's
 * stub_entry as that `syscall` would have, with rcx past it and rax as
 * the caller left it. Any other `ud2` stays SIGILL.
 */
export function stubSyscall(g: Guest, frame: number, live: DataView): boolean {
  const mem = g.mem!, v = mem.view;
  const at = (va: number) => physOf(mem, g.threads?.serving.id ?? 0, va);
  const rip = Number(v.getBigUint64(at(frame), true));
  if (mem.bytes[rip] !== 0x0f || mem.bytes[rip + 1] !== 0x0b || !rewritten(mem, rip)) {
    return false;
  }
  v.setBigUint64(at(frame), BigInt(g.kernel!.stubEntry), true);
  const next = new BigUint64Array(18);
  for (let i = 0; i < 18; i++) next[i] = live.getBigUint64(i * 8, true);
  next[R.rcx] = BigInt(rip + 2);
  setRegs(g.vcpu!, g.runView!, next);
  g.stubTraps++;
  return true;
}

/**
 * A fault in a stub's copy of a site's instruction (e.g. `mov
 * 0x18(%rdi,%rax), %r9` reading an unmapped page): the address the
 * program knows, that instruction's own; else `rip`.
 */
export function userRip(mem: GuestMemory, rip: number): number {
  if (!stubAt(mem, rip)) return rip;
  const site = mem.view.getUint32(rip + 6, true) - 2;
  const r = rewritten(mem, site);
  return r?.stub === rip ? r.at : rip;
}

/** The guest kernel's counts (--stats): sites rewritten, traps, trapped sites not asked about. */
export function stubCounts(mem: GuestMemory): { sites: number; traps: number; other: number } {
  const v = mem.view;
  return {
    sites: v.getUint32(ABI.STUB_ADDR + 4, true),
    traps: v.getUint32(ABI.STUB_ADDR + 8, true),
    other: v.getUint32(ABI.STUB_ADDR + 12, true),
  };
}
