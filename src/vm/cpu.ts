/**
 * The vCPU's initial state: a Linux-like GDT, a TSS, an IDT whose stubs
 * report exceptions to the host, long mode at CPL 3, the syscall MSRs, the
 * host's CPUID and XCR0 (so libc picks the same code paths as natively) and
 * Linux's initial FPU control words.
 * @module
 */
import { hostCpuid } from "../kvm/hostcpuid.ts";
import type { Platform } from "../kvm/platform.ts";
import { ABI } from "../kernel/abi.ts";
import type { Kvm, VcpuFd } from "../kvm/ioctls.ts";
import { LAYOUTS, regOffset, type Segment, writeSegment } from "../kvm/structs.ts";
import type { GuestMemory } from "./memory.ts";

/** Segment selectors, as Linux numbers them. */
export const SEL = { KERNEL_CS: 0x10, KERNEL_DS: 0x18, USER_DS: 0x2b, USER_CS: 0x33, TSS: 0x40 };

/** The model-specific registers hermitux sets. */
export const MSR = {
  TSC: 0x10,
  STAR: 0xc0000081,
  LSTAR: 0xc0000082,
  CSTAR: 0xc0000083,
  SFMASK: 0xc0000084,
  FS_BASE: 0xc0000100,
  GS_BASE: 0xc0000101,
  KERNEL_GS_BASE: 0xc0000102,
  TSC_AUX: 0xc0000103,
};

const CR0 = 0x80050033n; // PG AM WP NE ET MP PE
const CR4_PAE = 0x20n, CR4_OSFXSR = 0x200n, CR4_OSXMMEXCPT = 0x400n;
const CR4_FSGSBASE = 0x10000n, CR4_OSXSAVE = 0x40000n;
const EFER = 0xd01n; // SCE LME LMA NXE
const TSS_SIZE = 104;
const VECTORS = 32;

/** Entry points of the loaded guest kernel image. */
export interface KernelEntries {
  /** `_start`. */
  start: number;
  /** `syscall_entry` (IA32_LSTAR). */
  syscallEntry: number;
  /** First of 32 exception stubs, 16 bytes apart. */
  exceptionStubs: number;
}

/** The host CPU's features as KVM reports them. */
export interface CpuFeatures {
  /** `struct kvm_cpuid2` with the supported entries, FSGSBASE set. */
  cpuid: Uint8Array;
  /** CPUID.1:EDX, Linux's AT_HWCAP. */
  hwcap: number;
  /** The XCR0 to give the guest. */
  xcr0: bigint;
  /** Bytes of an XSAVE image (standard format) holding every component of `xcr0`. */
  xsaveSize: number;
}

/**
 * CPUID bits of instructions that run at CPL 3 with no help from the
 * hypervisor, by [leaf, subleaf, register (0 eax .. 3 edx)]. kvm_pvm runs
 * guest user code on the host CPU as it is but reports fewer of these than
 * the host has (e.g. LZCNT, RDPID), and glibc would then pick other string
 * and math routines than natively. Supervisor features are not here.
 */
const USER_BITS: readonly [number, number, number, number][] = [
  // SSE3 PCLMUL SSSE3 FMA CX16 SSE4.1 SSE4.2 MOVBE POPCNT AES F16C RDRAND
  [1, 0, 2, 0x6798_3203],
  // BMI1 HLE AVX2 BMI2 ERMS RTM RDSEED ADX CLFLUSHOPT CLWB SHA
  [7, 0, 1, 0x218c_0b38],
  // GFNI VAES VPCLMULQDQ RDPID MOVDIRI MOVDIR64B
  [7, 0, 2, 0x1840_0700],
  // FSRM
  [7, 0, 3, 0x0000_0010],
  // LAHF LZCNT SSE4A PREFETCHW
  [0x8000_0001, 0, 2, 0x0000_0161],
  // RDTSCP
  [0x8000_0001, 0, 3, 0x0800_0000],
  // XSAVEOPT XSAVEC XGETBV1
  [0xd, 1, 0, 0x0000_0007],
];

/**
 * Reads `KVM_GET_SUPPORTED_CPUID` once and derives what the guest needs. On
 * kvm_pvm the host's own user-mode instruction bits are added (USER_BITS).
 */
export function cpuFeatures(kvm: Kvm, platform?: Platform): CpuFeatures {
  const cpuid = kvm.supportedCpuid();
  const v = new DataView(cpuid.buffer);
  const e = LAYOUTS.kvm_cpuid_entry2;
  let hwcap = 0, xcr0 = 3n;
  const components: [number, number, number][] = []; // [bit, offset, size]
  for (let i = 0; i < v.getUint32(0, true); i++) {
    const o = LAYOUTS.kvm_cpuid2.size + i * e.size;
    const fn = v.getUint32(o + e.fields.function, true);
    const index = v.getUint32(o + e.fields.index, true);
    if (platform === "kvm_pvm") {
      const regs = ["eax", "ebx", "ecx", "edx"] as const;
      for (const [leaf, sub, reg, mask] of USER_BITS) {
        if (leaf !== fn || sub !== index) continue;
        const at = o + e.fields[regs[reg]];
        v.setUint32(at, (v.getUint32(at, true) | (hostCpuid(leaf, sub)[reg] & mask)) >>> 0, true);
      }
    }
    if (fn === 1) hwcap = v.getUint32(o + e.fields.edx, true);
    if (fn === 7 && index === 0) {
      // FSGSBASE must be in the guest's CPUID for CR4.FSGSBASE to be accepted.
      v.setUint32(o + e.fields.ebx, v.getUint32(o + e.fields.ebx, true) | 1, true);
    }
    if (fn === 0xd && index === 0) {
      const mask = BigInt(v.getUint32(o + e.fields.eax, true)) |
        BigInt(v.getUint32(o + e.fields.edx, true)) << 32n;
      // x87, SSE, AVX and AVX-512 state; not MPX/PKRU/AMX, which need more setup.
      xcr0 = mask & 0xe7n;
    }
    if (fn === 0xd && index >= 2 && index < 63) {
      const size = v.getUint32(o + e.fields.eax, true);
      components.push([index, v.getUint32(o + e.fields.ebx, true), size]);
    }
  }
  let xsaveSize = 576; // legacy region + header
  for (const [bit, offset, size] of components) {
    if (xcr0 >> BigInt(bit) & 1n) xsaveSize = Math.max(xsaveSize, offset + size);
  }
  return { cpuid, hwcap, xcr0, xsaveSize };
}

function descriptor(access: number, flags: number): bigint {
  // base 0, limit 0xfffff: only the access byte and flags nibble vary
  return 0xffffn | BigInt(access) << 40n | 0xfn << 48n | BigInt(flags) << 52n;
}

/** Writes GDT, TSS and IDT into guest memory. */
export function writeSystemTables(mem: GuestMemory, k: KernelEntries): void {
  const v = mem.view;
  const gdt = ABI.GDT_ADDR;
  mem.bytes.fill(0, gdt, ABI.EXC_STACK_TOP);
  v.setBigUint64(gdt + 0x10, descriptor(0x9a, 0xa), true); // kernel code, L
  v.setBigUint64(gdt + 0x18, descriptor(0x92, 0xc), true); // kernel data
  v.setBigUint64(gdt + 0x20, descriptor(0xfa, 0xc), true); // user code, 32-bit
  v.setBigUint64(gdt + 0x28, descriptor(0xf2, 0xc), true); // user data
  v.setBigUint64(gdt + 0x30, descriptor(0xfa, 0xa), true); // user code, L
  const tss = BigInt(ABI.TSS_ADDR);
  v.setBigUint64(
    gdt + SEL.TSS,
    BigInt(TSS_SIZE - 1) | (tss & 0xffffffn) << 16n | 0x89n << 40n | (tss >> 24n & 0xffn) << 56n,
    true,
  );
  v.setBigUint64(gdt + SEL.TSS + 8, tss >> 32n, true);
  v.setBigUint64(ABI.TSS_ADDR + 4, BigInt(ABI.EXC_STACK_TOP), true); // rsp0
  // IST1: exceptions always switch stacks, also at CPL 0 where rsp0 is not
  // used, so a fault never writes into the application's red zone.
  v.setBigUint64(ABI.TSS_ADDR + 36, BigInt(ABI.EXC_STACK_TOP), true);
  v.setUint16(ABI.TSS_ADDR + 102, TSS_SIZE, true); // no I/O bitmap

  for (let vec = 0; vec < VECTORS; vec++) {
    const handler = BigInt(k.exceptionStubs + vec * 16);
    // #BP and #OF may be raised by int3/into at CPL 3.
    const dpl = vec === 3 || vec === 4 ? 3n : 0n;
    const ist = 1n;
    const lo = (handler & 0xffffn) | BigInt(SEL.KERNEL_CS) << 16n | ist << 32n |
      (0x8en | dpl << 5n) << 40n | (handler >> 16n & 0xffffn) << 48n;
    v.setBigUint64(ABI.IDT_ADDR + vec * 16, lo, true);
    v.setBigUint64(ABI.IDT_ADDR + vec * 16 + 8, handler >> 32n, true);
  }
}

const flat = (selector: number, type: number, dpl: number, l: number): Segment => ({
  base: 0n,
  limit: 0xffffffff,
  selector,
  type,
  present: 1,
  dpl,
  db: l ? 0 : 1,
  s: 1,
  l,
  g: 1,
});

/**
 * Puts a vCPU in long mode at `cpl` at the kernel's `_start`. `cpuid` false
 * keeps a CPUID set before (KVM refuses a new one once a vCPU has run).
 */
export function setupVcpu(
  vcpu: VcpuFd,
  id: number,
  cr3: bigint,
  k: KernelEntries,
  features: CpuFeatures,
  cpl: 0 | 3,
  cpuid = true,
): void {
  if (cpuid) vcpu.setCpuid2(features.cpuid);

  const sregs = new Uint8Array(LAYOUTS.kvm_sregs.size);
  vcpu.getSregs(sregs);
  const sv = new DataView(sregs.buffer);
  const f = LAYOUTS.kvm_sregs.fields;
  // At CPL 0 the selectors are those `syscall` loads from STAR, so a
  // syscall changes nothing and the handler can return with a plain jmp.
  const [cs, ds] = cpl === 3 ? [SEL.USER_CS, SEL.USER_DS] : [SEL.KERNEL_CS, SEL.KERNEL_DS];
  writeSegment(sv, f.cs, flat(cs, 0xb, cpl, 1));
  for (const s of ["ds", "es", "fs", "gs", "ss"] as const) {
    writeSegment(sv, f[s], flat(ds, 0x3, cpl, 0));
  }
  writeSegment(sv, f.tr, {
    base: BigInt(ABI.TSS_ADDR),
    limit: TSS_SIZE - 1,
    selector: SEL.TSS,
    type: 0xb,
    present: 1,
    dpl: 0,
    db: 0,
    s: 0,
    l: 0,
    g: 0,
  }); // deno-fmt-ignore
  writeSegment(sv, f.ldt, {
    base: 0n, limit: 0xffff, selector: 0, type: 2, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0,
  });
  sv.setBigUint64(f.gdt, BigInt(ABI.GDT_ADDR), true);
  sv.setUint16(f.gdt + 8, 0x4f, true);
  sv.setBigUint64(f.idt, BigInt(ABI.IDT_ADDR), true);
  sv.setUint16(f.idt + 8, VECTORS * 16 - 1, true);
  sv.setBigUint64(f.cr0, CR0, true);
  sv.setBigUint64(f.cr3, cr3, true);
  sv.setBigUint64(
    f.cr4,
    CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_FSGSBASE | CR4_OSXSAVE,
    true,
  );
  sv.setBigUint64(f.efer, EFER, true);
  vcpu.setSregs(sregs);

  vcpu.setXcr0(features.xcr0);
  vcpu.setMsrs([
    [MSR.STAR, 0x0023001000000000n],
    [MSR.LSTAR, BigInt(k.syscallEntry)],
    [MSR.CSTAR, 0n],
    [MSR.SFMASK, 0x47700n],
    [MSR.FS_BASE, 0n],
    [MSR.GS_BASE, 0n],
    [MSR.KERNEL_GS_BASE, 0n],
    [MSR.TSC_AUX, BigInt(id)],
  ]);

  const fpu = new Uint8Array(LAYOUTS.kvm_fpu.size);
  const fv = new DataView(fpu.buffer);
  fv.setUint16(LAYOUTS.kvm_fpu.fields.fcw, 0x37f, true);
  fv.setUint32(LAYOUTS.kvm_fpu.fields.mxcsr, 0x1f80, true);
  vcpu.setFpu(fpu);

  const regs = new Uint8Array(LAYOUTS.kvm_regs.size);
  const rv = new DataView(regs.buffer);
  rv.setBigUint64(regOffset("rip"), BigInt(k.start), true);
  rv.setBigUint64(regOffset("rsp"), BigInt(ABI.KSTACK_TOP), true);
  rv.setBigUint64(regOffset("rdi"), BigInt(ABI.BOOT_INFO_ADDR), true);
  rv.setBigUint64(regOffset("rflags"), 2n, true);
  vcpu.setRegs(regs);
}
