/**
 * Syscall rewriting's host side (docs/REWRITING.md): which mode a run uses
 * (`auto` resolved), and the zpoline modes. `--rewrite=static` patches
 * every `syscall` site found (the program, the interpreter, each library
 * ld.so maps) to `call *%rax` before it runs; a rewritten call made with a
 * number past the trampoline's sled is finished as `syscall` would, with
 * ENOSYS. `--rewrite=stub`, the default on kvm_pvm, lives in stubs.ts.
 * @module
 */
import { ABI } from "../kernel/abi.ts";
import type { Platform } from "../kvm/platform.ts";
import { regOffset } from "../kvm/structs.ts";
import { type ElfFile, parseElf, PT_LOAD } from "../loader/elf.ts";
import { mapFile } from "../loader/mapfile.ts";
import { dispatch } from "../syscalls/registry.ts";
import type { GuestMemory } from "./memory.ts";
import { physOf } from "./percpu.ts";
import { R } from "./sigframe.ts";
import { setRegs } from "./machine.ts";
import type { Guest } from "./guest.ts";
import type { BootOptions, RunStats } from "./options.ts";
import { stubCounts } from "./stubs.ts";
import { COSTLY_TRAP_US, type HostMeasurement, us } from "./hostprobe.ts";

/** A rewriting mode a run uses (`auto` resolved). */
export type RewriteMode = "off" | "stub" | "lazy" | "static";

/**
 * What `rewrite: "auto"` (the default) means, and why: from `measured`
 * (this host's costs, src/vm/hostprobe.ts) when given, the stub rewriting
 * where a `syscall` trap costs {@linkcode COSTLY_TRAP_US} or more (15-34 µs
 * on most kvm_pvm hosts, against ~0.1 µs for a rewritten call), nothing
 * where it is cheaper (hardware KVM, ~0.1 µs; one kvm_pvm host, 0.9 µs).
 * Without a measurement: stub on kvm_pvm, nothing on hardware KVM.
 */
export function resolveRewrite(
  mode: BootOptions["rewrite"],
  platform: Platform,
  measured?: HostMeasurement,
): { mode: RewriteMode; why: string } {
  if (mode && mode !== "auto") return { mode, why: "as asked" };
  const page0 = "page 0 stays unmapped";
  if (measured) {
    const trap = `a syscall trap of ${us(measured.trapUs)}`;
    return measured.trapUs >= COSTLY_TRAP_US
      ? { mode: "stub", why: `${trap} (${COSTLY_TRAP_US} µs or more) pays for rewriting; ${page0}` }
      : { mode: "off", why: `${trap} (under ${COSTLY_TRAP_US} µs) does not pay for rewriting` };
  }
  return platform === "kvm_pvm"
    ? {
      mode: "stub",
      why: `the default on kvm_pvm, where a syscall trap costs microseconds; ${page0}`,
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

/** What `g`'s rewriting did, for its stats (RunResult.stats.rewrite). */
export function rewriteStats(g: Guest): RunStats["rewrite"] {
  return g.stubs
    ? {
      mode: g.rewriteMode,
      ...stubCounts(g.mem!),
      asked: g.rewriteAsked,
      askedMs: Math.round(g.rewriteMs * 100) / 100,
      ud2: g.stubTraps,
    }
    : { mode: g.rewriteMode, sites: g.rewrittenSites };
}
