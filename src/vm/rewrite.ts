/**
 * Syscall rewriting's host side (docs/REWRITING.md). `--rewrite=stub`, the
 * default on kvm_pvm: the guest kernel asks (HC_REWRITE) before it turns
 * a `syscall` that just trapped, with the 5-byte instruction before it
 * (`mov $NR, %eax` in the usual wrapper), into a jmp to a stub and a
 * `ud2`; the host writes the stub only when the code's unwind tables or
 * symbols prove that instruction whole and it can run elsewhere, and later
 * serves a jump onto such a `ud2` as the syscall it replaced. `--rewrite=static` patches every
 * `syscall` site found (the program, the interpreter, each library ld.so
 * maps) to `call *%rax` before it runs; a rewritten call made with a number
 * past the trampoline's sled is finished as `syscall` would, with ENOSYS.
 * @module
 */
import { ABI, REGION } from "../kernel/abi.ts";
import type { Platform } from "../kvm/platform.ts";
import { regOffset } from "../kvm/structs.ts";
import { type ElfFile, parseElf, PF_X, PT_LOAD } from "../loader/elf.ts";
import { mapFile } from "../loader/mapfile.ts";
import { fiveBeforeSyscall } from "../analysis/boundary.ts";
import { fileMappings } from "../syscalls/mm.ts";
import { dispatch } from "../syscalls/registry.ts";
import type { GuestMemory } from "./memory.ts";
import { physOf } from "./percpu.ts";
import { R } from "./sigframe.ts";
import { setRegs } from "./machine.ts";
import type { Guest } from "./guest.ts";
import { fileAt, guestRegions, readGuestElf } from "./program.ts";
import type { BootOptions } from "./options.ts";

/** A rewriting mode a run uses (`auto` resolved). */
export type RewriteMode = "off" | "stub" | "lazy" | "static";

/**
 * What `rewrite: "auto"` (the default) means on `platform`, and why: the
 * stub rewriting where a `syscall` traps at a cost of microseconds
 * (kvm_pvm: 17-34 µs measured here against ~0.1 µs for a rewritten call),
 * nothing on hardware KVM, where the trap enters CPL 0 directly.
 */
export function resolveRewrite(
  mode: BootOptions["rewrite"],
  platform: Platform,
): { mode: RewriteMode; why: string } {
  if (mode && mode !== "auto") return { mode, why: "as asked" };
  return platform === "kvm_pvm"
    ? {
      mode: "stub",
      why: "the default on kvm_pvm, where a syscall trap costs microseconds; " +
        "page 0 stays unmapped",
    }
    : { mode: "off", why: `the default on ${platform}, where a syscall trap is cheap` };
}

/** --rewrite=static: `syscall` (0f 05) → `call *%rax` (ff d0) at every site found. */
export function patchSites(
  g: Guest,
  mem: GuestMemory,
  bytes: Uint8Array,
  elf: ElfFile,
  base: number,
): void {
  for (const addr of g.sites!(bytes, elf)) patchAt(g, mem, base + addr);
}

/** Rewrites the `syscall` at guest `at`, if one is there. */
export function patchAt(g: Guest, mem: GuestMemory, at: number): void {
  if (at + 2 > mem.size || mem.view.getUint16(at, true) !== 0x050f) return;
  mem.view.setUint16(at, 0xd0ff, true);
  g.rewrittenSites++;
}

/**
 * --rewrite=static for a library ld.so maps: patches the sites of the
 * file behind `hostFd` that fall in the part mapped (file bytes from
 * `offset`, `len` of them at guest `start`). Sites are found once per file.
 */
export function patchMapping(
  g: Guest,
  hostFd: number,
  offset: number,
  start: number,
  len: number,
): void {
  let path: string;
  try {
    path = Deno.readLinkSync(`/proc/self/fd/${hostFd}`);
  } catch {
    return;
  }
  let offs = g.libSites.get(path);
  if (!offs) {
    offs = [];
    try {
      const bytes = mapFile(path), elf = parseElf(bytes, path);
      const loads = elf.segments.filter((s) => s.type === PT_LOAD);
      for (const addr of g.sites!(bytes, elf)) {
        const seg = loads.find((s) => addr >= s.vaddr && addr < s.vaddr + s.filesz);
        if (seg) offs.push(addr - seg.vaddr + seg.offset);
      }
    } catch { /* not an ELF file we can read: leave it */ }
    g.libSites.set(path, offs);
  }
  for (const off of offs) {
    if (off >= offset && off + 2 <= offset + len) patchAt(g, g.mem!, start + off - offset);
  }
}

/**
 * A rewritten site (`call *%rax`) run with a number past the trampoline's
 * sled (or an address for rax) faults in page 0 or at rax: finish it as
 * `syscall` would, with ENOSYS, at the call's return address.
 */
export function badRewrittenCall(
  g: Guest,
  vector: number,
  errorCode: number,
  frame: number,
  live: DataView,
): boolean {
  const mem = g.mem!, v = mem.view;
  const at = (va: number) => physOf(mem, g.threads?.serving.id ?? 0, va);
  const rip = v.getBigUint64(at(frame), true);
  const rsp = v.getBigUint64(at(frame + 24), true);
  const rax = live.getBigUint64(regOffset("rax"), true);
  const isCall = (addr: bigint) => {
    try {
      return mem.view.getUint16(mem.check(addr, 2), true) === 0xd0ff;
    } catch {
      return false;
    }
  };
  let ret: bigint, sp = rsp;
  if (vector === 13 && isCall(rip)) {
    // A non-canonical rax: the call itself faulted, nothing was pushed.
    ret = rip + 2n;
  } else {
    // int3 past the sled in page 0, or an instruction fetch at rax.
    const pastSled = vector === 3 && rip <= BigInt(ABI.PAGE_SIZE);
    const fetchAtRax = vector === 14 && (errorCode & 0x10) !== 0 && rip === rax;
    if (!pastSled && !fetchAtRax) return false;
    try {
      ret = mem.u64(rsp);
    } catch {
      return false;
    }
    if (!isCall(ret - 2n)) return false;
    sp = rsp + 8n;
  }
  v.setBigUint64(at(frame), ret, true);
  v.setBigUint64(at(frame + 24), sp, true);
  const next = new BigUint64Array(18);
  for (let i = 0; i < 18; i++) next[i] = live.getBigUint64(i * 8, true);
  // No such syscall (numbers past the sled): ENOSYS, named once as usual.
  // The host call's number is 32 bits wide (struct hostcall): the same name either way.
  const nr = Number(BigInt.asUintN(32, rax));
  const r = dispatch(
    g.registry,
    { nr, args: [0n, 0n, 0n, 0n, 0n, 0n], site: Number(ret - 2n), process: g.process! },
    g.diag,
    g.warned,
  );
  next[R.rax] = BigInt.asUintN(64, r);
  next[R.rsp] = BigInt(frame);
  setRegs(g.vcpu!, g.runView!, next);
  return true;
}

/** Code the stub rewriter may look at: a file's bytes and where it is in guest memory. */
interface CodeFile {
  bytes: Uint8Array;
  elf: ElfFile;
  /** Guest address minus link-time address. */
  bias: number;
}

/** The file whose executable segment holds guest [at, at + len), if any. */
function codeFileAt(g: Guest, at: number, len: number): CodeFile | undefined {
  const inX = (elf: ElfFile, vaddr: number) =>
    elf.segments.some((s) =>
      s.type === PT_LOAD && (s.flags & PF_X) !== 0 && vaddr >= s.vaddr &&
      vaddr + len <= s.vaddr + s.filesz
    );
  // The program and its interpreter, which the host loaded.
  for (const o of g.objects) {
    if (o.bytes && inX(o.elf, at - o.base)) return { bytes: o.bytes, elf: o.elf, bias: o.base };
  }
  // A library ld.so mapped: a private file mapping with PROT_EXEC.
  const v = g.mem!.view;
  let r;
  for (const x of guestRegions(g.mem!, g.kernel!.mm)) if (x.start <= at && at < x.end) r = x;
  if (!r || at + len > r.end || !v.getUint8(r.at + REGION.file)) return undefined;
  if (v.getUint8(r.at + REGION.shared) || !(v.getUint8(r.at + REGION.prot) & 4)) return undefined;
  const f = fileAt(fileMappings(g.process!), at);
  if (!f?.path || at + len > f.end) return undefined;
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
    s.type === PT_LOAD && (s.flags & PF_X) !== 0 && off >= s.offset &&
    off + len <= s.offset + s.filesz
  );
  return seg ? { ...file, bias: at - (off - seg.offset + seg.vaddr) } : undefined;
}

/** Whether guest [lo, hi) is the file's bytes, but for sites this rewriter changed. */
function sameCode(mem: GuestMemory, file: CodeFile, lo: number, hi: number): boolean {
  const g = mem.bytes, f = file.bytes, d = file.bias - fileDelta(file, lo - file.bias);
  for (let a = lo; a < hi; a++) {
    if (g[a] === f[a - d]) continue;
    // A jmp to a stub (e9 rel32) and its ud2 (0f 0b; still 0f 05 while
    // another vCPU is between the two writes) where the file has an
    // instruction and a syscall: the stub holds that instruction.
    if (a + 7 > hi || g[a] !== 0xe9) return false;
    const stub = a + 5 + mem.view.getInt32(a + 1, true);
    if (
      !isStub(mem, stub, a + 5) || g[a + 5] !== 0x0f || (g[a + 6] !== 0x0b && g[a + 6] !== 0x05) ||
      f[a - d + 5] !== 0x0f || f[a - d + 6] !== 0x05
    ) return false;
    for (let k = 0; k < 5; k++) if (g[stub + k] !== f[a - d + k]) return false;
    a += 6;
  }
  return true;
}

/** File offset minus link-time address in the PT_LOAD segment that holds `vaddr`. */
function fileDelta(file: CodeFile, vaddr: number): number {
  const s = file.elf.segments.find((s) =>
    s.type === PT_LOAD && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz
  )!;
  return s.offset - s.vaddr;
}

/**
 * HC_REWRITE: may the `syscall` at guest `site` (it just trapped) and the
 * 5-byte instruction before it become a jmp to a stub? If so, writes the
 * stub (that instruction, `mov $(site + 2), %ecx`, `jmp stub_entry`) in a
 * free slot and returns its address, plus 1 when the guest may write the
 * jmp however it is aligned (the process has no other thread that could
 * see a torn write); else 0 (its five bytes do not lie in one aligned
 * 16-byte block, which one locked store can replace). Yes needs the code
 * to be a private, executable mapping of a file whose unwind tables or
 * symbols give the function around the site, whose bytes from that
 * function's start decode to an instruction at `site - 5` exactly that
 * can run elsewhere (fiveBeforeSyscall), and which guest memory still
 * holds as the file does.
 */
export function serveRewrite(g: Guest, site: number): number {
  const mem = g.mem!, b = mem.bytes;
  const at = site - 5;
  g.rewriteAsked++;
  if (!Number.isSafeInteger(site) || at < ABI.USER_MIN || site + 2 > mem.userEnd) return 0;
  if (b[site] !== 0x0f || b[site + 1] !== 0x05) return 0;
  if (mem.overlays.list.some((o) => o.start < site + 2 && at < o.end)) return 0;
  const anyAlign = (at & 15) > 11;
  if (anyAlign && (g.threads?.count ?? 1) !== 1) return 0;
  const file = codeFileAt(g, at, 7);
  if (!file) return 0;
  const fn = fiveBeforeSyscall(file.bytes, file.elf, site - file.bias);
  if (!fn || !sameCode(mem, file, fn.start + file.bias, site + 2)) return 0;
  // A free slot: the count is the host's (host calls are served one at a time).
  const slots = mem.view.getUint32(ABI.STUB_ADDR, true);
  const stub = ABI.STUB_FIRST + slots * ABI.STUB_SIZE;
  if (stub + ABI.STUB_SIZE > ABI.STUB_END || site + 2 > 0xffffffff) return 0;
  mem.view.setUint32(ABI.STUB_ADDR, slots + 1, true);
  b.copyWithin(stub, at, site); // the instruction (no rip-relative operand)
  b[stub + 5] = 0xb9; // mov $(site + 2), %ecx
  mem.view.setUint32(stub + 6, site + 2, true);
  b[stub + 10] = 0xe9; // jmp stub_entry
  mem.view.setInt32(stub + 11, g.kernel!.stubEntry - (stub + 15), true);
  b[stub + 15] = 0xcc;
  return stub + (anyAlign ? 1 : 0);
}

/**
 * A #UD at a rewritten site's `ud2` (something jumped onto the old
 * `syscall`, or a restart after a signal): enter the guest kernel's
 * stub_entry as that `syscall` would have, with rcx past it and rax as the
 * caller left it. A `ud2` is ours when the 5 bytes before it are a jmp to
 * a stub that returns right past it; any other stays SIGILL.
 */
export function stubSyscall(g: Guest, frame: number, live: DataView): boolean {
  const mem = g.mem!, v = mem.view;
  const at = (va: number) => physOf(mem, g.threads?.serving.id ?? 0, va);
  const rip = Number(v.getBigUint64(at(frame), true));
  if (!isStubSite(mem, rip)) return false;
  v.setBigUint64(at(frame), BigInt(g.kernel!.stubEntry), true);
  const next = new BigUint64Array(18);
  for (let i = 0; i < 18; i++) next[i] = live.getBigUint64(i * 8, true);
  next[R.rcx] = BigInt(rip + 2);
  setRegs(g.vcpu!, g.runView!, next);
  g.stubTraps++;
  return true;
}

/** Whether guest `site` holds the `ud2` of a site this rewriter changed. */
function isStubSite(mem: GuestMemory, site: number): boolean {
  if (site - 5 < ABI.USER_MIN || site + 2 > mem.userEnd) return false;
  const b = mem.bytes;
  if (b[site] !== 0x0f || b[site + 1] !== 0x0b || b[site - 5] !== 0xe9) return false;
  return isStub(mem, site + mem.view.getInt32(site - 4, true), site);
}

/** Whether a stub slot starts at `stub` and returns to `site + 2`. */
function isStub(mem: GuestMemory, stub: number, site: number): boolean {
  if (stub < ABI.STUB_FIRST || stub + ABI.STUB_SIZE > ABI.STUB_END) return false;
  if ((stub - ABI.STUB_FIRST) % ABI.STUB_SIZE !== 0) return false;
  return mem.bytes[stub + 5] === 0xb9 && mem.view.getUint32(stub + 6, true) === site + 2;
}

/**
 * A fault in a stub's copy of a site's instruction (e.g. `mov
 * 8(%rsp,%rdi), %r9` reading an unmapped page): the address the program
 * knows, that instruction's place before the site; else `rip`.
 */
export function userRip(mem: GuestMemory, rip: number): number {
  if (rip < ABI.STUB_FIRST || rip >= ABI.STUB_END || (rip - ABI.STUB_FIRST) % ABI.STUB_SIZE) {
    return rip;
  }
  const at = mem.view.getUint32(rip + 6, true) - 7; // mov $(site + 2), %ecx
  if (mem.bytes[rip + 5] !== 0xb9 || at < ABI.USER_MIN || at + 7 > mem.userEnd) return rip;
  const jmpTo = at + 5 + mem.view.getInt32(at + 1, true);
  return mem.bytes[at] === 0xe9 && jmpTo === rip ? at : rip;
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
