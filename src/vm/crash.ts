/**
 * A guest CPU exception: a handler's signal if the program has one,
 * otherwise a crash report (signal, rip, symbol, backtrace) named from
 * the program's and its libraries' symbols, read again only then.
 * @module
 */
import { ABI, REGION } from "../kernel/abi.ts";
import { LAYOUTS, regOffset } from "../kvm/structs.ts";
import { type ElfFile, parseElf, PT_LOAD } from "../loader/elf.ts";
import { vdsoStart } from "../kernel/image.ts";
import { fileMappings } from "../syscalls/mm.ts";
import {
  crashFromException,
  type CrashReport,
  HAS_ERROR_CODE,
  type LoadedObject,
  SIG,
  symbolize,
  type Symbolizer,
  vectorSignal,
} from "./fault.ts";
import { physOf } from "./percpu.ts";
import { SI, type SigInfo } from "../syscalls/signal.ts";
import { fileAt, guestRegions, readGuestElf } from "./program.ts";
import { badRewrittenCall } from "./rewrite.ts";
import { stubSyscall, userRip } from "./stubs.ts";
import { regionAt } from "./hostcall.ts";
import { enterFaultHandler } from "./deliver.ts";
import { liveRegs, setRegs } from "./machine.ts";
import type { Guest } from "./guest.ts";

/**
 * A CPU exception: the stub stored to the doorbell with the CPU's frame at
 * rsp (on the IST stack). With a handler for its signal (not blocked), the
 * signal frame goes on the user stack, the CPU frame is rewritten to enter
 * the handler and rsp points at its rip slot, so the stub's iretq goes
 * there. Otherwise (or in the guest kernel) the run ends with a report.
 */
export function onException(g: Guest, vector: number): CrashReport | undefined {
  const mem = g.mem!, live = liveRegs(g.vcpu!, g.runView!);
  let frame = Number(live.getBigUint64(regOffset("rsp"), true));
  // The exception stack is per vCPU (percpu.ts).
  const at = (va: number) => physOf(mem, g.threads?.serving.id ?? 0, va);
  let errorCode = 0;
  if (HAS_ERROR_CODE.has(vector)) {
    errorCode = Number(mem.view.getBigUint64(at(frame), true));
    frame += 8;
  }
  const cpuRip = Number(mem.view.getBigUint64(at(frame), true));
  // In a stub's copy of a site's instruction (--rewrite=stub): as if at the site.
  const rip = g.stubs ? userRip(mem, cpuRip) : cpuRip;
  if (rip !== cpuRip) mem.view.setBigUint64(at(frame), BigInt(rip), true);
  const rsp = Number(mem.view.getBigUint64(at(frame + 24), true));
  const sregs = new Uint8Array(LAYOUTS.kvm_sregs.size);
  g.vcpu!.getSregs(sregs);
  const cr2 = Number(new DataView(sregs.buffer).getBigUint64(LAYOUTS.kvm_sregs.fields.cr2, true));
  // Above RAM: a first touch, backed now (high.ts), or past what --mem allows.
  if (vector === 14 && g.mem?.high?.holds(cr2)) {
    const outcome = g.mem.high.fault(cr2, errorCode);
    if (outcome === "mapped") return retry(g, live, frame);
    if (outcome === "out of memory") return outOfMemory(g, rip, rsp, cr2);
  }
  // With rewriting, page 0 holds the trampoline: to data it is still "not
  // there" (a write faults as on an unmapped page; a read cannot fault).
  if (g.rewrite && vector === 14 && cr2 < ABI.PAGE_SIZE && !(errorCode & 0x10)) {
    errorCode &= ~1;
  }
  if (g.rewrite && badRewrittenCall(g, vector, errorCode, frame, live)) return undefined;
  // A jump onto a rewritten site's ud2 (--rewrite=stub): that syscall.
  if (vector === 6 && g.stubs && stubSyscall(g, frame, live)) return undefined;
  // Under gdb: a breakpoint, a step, or the fault shown to gdb first (src/gdb).
  if (g.debugger?.exception(g, vector, frame, live)) return undefined;
  if (rip >= ABI.USER_MIN && enterFaultHandler(g, vector, errorCode, cr2, frame, live)) {
    return undefined;
  }
  const report = crashFromException(vector, errorCode, rip, rsp, cr2, mem, symbolizer(g));
  if (vector === 14 && g.prot?.isPastEnd(cr2)) {
    report.signal = SIG.SIGBUS;
    report.description = `bus error: access past the end of a mapped file 0x${cr2.toString(16)}`;
  }
  return report;
}

/** Resumes the faulting instruction: the stub's iretq, with rsp past the error code. */
function retry(g: Guest, live: DataView, frame: number): undefined {
  const regs = new BigUint64Array(LAYOUTS.kvm_regs.size / 8);
  new Uint8Array(regs.buffer).set(
    new Uint8Array(live.buffer, live.byteOffset, LAYOUTS.kvm_regs.size),
  );
  regs[regOffset("rsp") / 8] = BigInt(frame);
  setRegs(g.vcpu!, g.runView!, regs);
  return undefined;
}

/**
 * The guest touched more than its RAM's size in all (--mem): killed, as
 * Linux's OOM killer would, with a report that names the bound.
 */
function outOfMemory(g: Guest, rip: number, rsp: number, cr2: number): CrashReport {
  const mib = g.mem!.size / 1048576;
  return {
    signal: SIG.SIGKILL,
    description: `out of memory: the guest touched all of its ${mib} MiB (--mem) at 0x${
      cr2.toString(16)
    }`,
    rip,
    rsp,
    address: cr2,
    symbol: symbolize(symbolizer(g), rip),
    backtrace: [],
  };
}

/** The siginfo Linux gives for exception `vector` in user mode. */
export function faultInfo(
  g: Guest,
  vector: number,
  errorCode: number,
  cr2: number,
  rip: bigint,
): SigInfo {
  const signo = vectorSignal(vector);
  switch (vector) {
    case 0:
      return { signo, code: SI.FPE_INTDIV, addr: rip };
    case 1:
      return { signo, code: SI.TRAP_TRACE, addr: rip };
    case 6:
      return { signo, code: SI.ILL_ILLOPN, addr: rip };
    case 14:
      // Past a mapped file's end: SIGBUS. In a mapping: no access (its
      // entry may be not present, for PROT_NONE). Elsewhere: not mapped.
      if (g.prot?.isPastEnd(cr2)) {
        return { signo: SIG.SIGBUS, code: SI.BUS_ADRERR, addr: BigInt(cr2) };
      }
      return {
        signo,
        code: errorCode & 1 || regionAt(g, cr2) ? SI.SEGV_ACCERR : SI.SEGV_MAPERR,
        addr: BigInt(cr2),
      };
    case 17:
      return { signo, code: SI.BUS_ADRALN, addr: 0n };
    case 16:
    case 19: {
      g.vcpu!.getXsave(g.xsave);
      const x = new DataView(g.xsave.buffer);
      const err = vector === 19
        ? ~(x.getUint32(24, true) >> 7) & x.getUint32(24, true)
        : x.getUint16(2, true) & ~x.getUint16(0, true);
      const code = err & 0x041
        ? SI.FPE_FLTINV
        : err & 0x004
        ? SI.FPE_FLTDIV
        : err & 0x008
        ? SI.FPE_FLTOVF
        : err & 0x012
        ? SI.FPE_FLTUND
        : err & 0x020
        ? SI.FPE_FLTRES
        : 0;
      return { signo, code, addr: rip };
    }
  }
  return { signo, code: SI.KERNEL, addr: 0n };
}

/** The vDSO, parsed for the first crash report that needs it. */
let vdsoElf: ElfFile | undefined;

/**
 * The program, the interpreter, the vDSO and every library the guest mapped
 * (read through the mounts again, and parsed, only now: for a crash report).
 */
export function symbolizer(g: Guest): Symbolizer {
  const out: LoadedObject[] = g.objects.map((o, i) => ({
    elf: o.elf,
    base: o.base,
    name: i ? o.path.slice(o.path.lastIndexOf("/") + 1) : undefined,
    bytes: o.bytes,
  }));
  // The vDSO (stripped: its dynamic symbols name its functions).
  if (g.kernel && g.machine) {
    vdsoElf ??= parseElf(g.kernel.vdso, "[vdso]");
    const base = vdsoStart(g.machine.stackTop, g.kernel);
    out.push({ elf: vdsoElf, base, name: "[vdso]", bytes: g.kernel.vdso });
  }
  const p = g.process;
  if (!p) return { objects: out };
  const seen = new Set<string>();
  const files = new Map<string, { elf: ElfFile; bytes: Uint8Array } | undefined>();
  const read = (path: string) => {
    if (!files.has(path)) {
      try {
        files.set(path, readGuestElf(p.mounts, path, "/"));
      } catch {
        files.set(path, undefined); // not an ELF file we can read: no symbols from it
      }
    }
    return files.get(path)?.elf;
  };
  for (const r of guestRegions(g.mem!, g.kernel!.mm)) {
    if (!g.mem!.view.getUint8(r.at + REGION.file)) continue;
    const f = fileAt(fileMappings(p), r.start);
    const elf = f?.path ? read(f.path) : undefined;
    if (!f?.path || !elf) continue;
    // The segment this mapping shows gives the load bias.
    const offset = f.offset + r.start - f.start;
    const seg = elf.segments.find((s) =>
      s.type === PT_LOAD && offset >= (s.offset & ~0xfff) && offset < s.offset + s.filesz
    );
    if (!seg) continue;
    const base = r.start + (seg.offset & ~0xfff) - offset - (seg.vaddr & ~0xfff);
    if (seen.has(`${f.path}@${base}`)) continue;
    seen.add(`${f.path}@${base}`);
    out.push({
      elf,
      base,
      name: f.path.slice(f.path.lastIndexOf("/") + 1),
      bytes: files.get(f.path)?.bytes,
    });
  }
  return { objects: out };
}

export function internalError(g: Guest, description: string): CrashReport {
  const regs = liveRegs(g.vcpu!, g.runView!);
  const rip = Number(regs.getBigUint64(regOffset("rip"), true));
  return {
    signal: SIG.SIGKILL,
    description: `hermitux internal: ${description}`,
    rip,
    rsp: Number(regs.getBigUint64(regOffset("rsp"), true)),
    symbol: symbolize(symbolizer(g), rip),
    backtrace: [],
  };
}
