/**
 * Struct layouts from `<linux/kvm.h>` (x86-64), defined once. Every offset
 * used anywhere in hermitux comes from {@linkcode LAYOUTS};
 * tests/structs_test.ts compiles a C program against the kernel headers and
 * checks each size and offset.
 * @module
 */

/** A C struct: its size and the byte offsets of the fields hermitux uses. */
export interface Layout {
  /** `sizeof(struct name)`. */
  size: number;
  /** Field path (as `offsetof` takes it) → byte offset. */
  fields: Record<string, number>;
}

/** General-purpose register names in `struct kvm_regs` order. */
export const REG_NAMES = [
  "rax",
  "rbx",
  "rcx",
  "rdx",
  "rsi",
  "rdi",
  "rsp",
  "rbp",
  "r8",
  "r9",
  "r10",
  "r11",
  "r12",
  "r13",
  "r14",
  "r15",
  "rip",
  "rflags",
] as const; // deno-fmt-ignore

/** One general-purpose register name. */
export type RegName = typeof REG_NAMES[number];

/** Segment register names in `struct kvm_sregs` order. */
export const SEG_NAMES = ["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"] as const;

const regFields = Object.fromEntries(REG_NAMES.map((n, i) => [n, i * 8])) as Record<
  RegName,
  number
>;
const segFields = { cs: 0, ds: 24, es: 48, fs: 72, gs: 96, ss: 120, tr: 144, ldt: 168 } as const;

/** The layouts, keyed by struct name without `struct `. */
export const LAYOUTS = {
  kvm_regs: { size: 144, fields: regFields },
  kvm_segment: {
    size: 24,
    fields: {
      base: 0,
      limit: 8,
      selector: 12,
      type: 14,
      present: 15,
      dpl: 16,
      db: 17,
      s: 18,
      l: 19,
      g: 20,
      avl: 21,
      unusable: 22,
    }, // deno-fmt-ignore
  },
  kvm_dtable: { size: 16, fields: { base: 0, limit: 8 } },
  kvm_sregs: {
    size: 312,
    fields: {
      ...segFields,
      gdt: 192,
      idt: 208,
      cr0: 224,
      cr2: 232,
      cr3: 240,
      cr4: 248,
      cr8: 256,
      efer: 264,
      apic_base: 272,
      interrupt_bitmap: 280,
    }, // deno-fmt-ignore
  },
  kvm_fpu: {
    size: 416,
    fields: {
      fpr: 0,
      fcw: 128,
      fsw: 130,
      ftwx: 132,
      last_opcode: 134,
      last_ip: 136,
      last_dp: 144,
      xmm: 152,
      mxcsr: 408,
    },
  },
  kvm_xsave: { size: 4096, fields: { region: 0 } },
  kvm_xcr: { size: 16, fields: { xcr: 0, value: 8 } },
  kvm_xcrs: { size: 392, fields: { nr_xcrs: 0, flags: 4, xcrs: 8 } },
  kvm_msr_entry: { size: 16, fields: { index: 0, data: 8 } },
  kvm_msrs: { size: 8, fields: { nmsrs: 0 } },
  kvm_cpuid_entry2: {
    size: 40,
    fields: { function: 0, index: 4, flags: 8, eax: 12, ebx: 16, ecx: 20, edx: 24 },
  },
  kvm_cpuid2: { size: 8, fields: { nent: 0 } },
  kvm_userspace_memory_region: {
    size: 32,
    fields: { slot: 0, flags: 4, guest_phys_addr: 8, memory_size: 16, userspace_addr: 24 },
  },
  kvm_sync_regs: { size: 520, fields: { regs: 0, sregs: 144, events: 456 } },
  kvm_ioeventfd: { size: 64, fields: { datamatch: 0, addr: 8, len: 16, fd: 20, flags: 24 } },
  kvm_stats_header: {
    size: 24,
    fields: {
      flags: 0,
      name_size: 4,
      num_desc: 8,
      id_offset: 12,
      desc_offset: 16,
      data_offset: 20,
    },
  },
  kvm_stats_desc: {
    size: 16,
    fields: { flags: 0, exponent: 4, size: 6, offset: 8, bucket_size: 12, name: 16 },
  },
  kvm_run: {
    size: 2352,
    fields: {
      request_interrupt_window: 0,
      immediate_exit: 1,
      exit_reason: 8,
      "mmio.phys_addr": 32,
      "mmio.data": 40,
      "mmio.len": 48,
      "mmio.is_write": 52,
      "io.direction": 32,
      "io.size": 33,
      "io.port": 34,
      "io.count": 36,
      "io.data_offset": 40,
      "internal.suberror": 32,
      "internal.ndata": 36,
      "internal.data": 40,
      "fail_entry.hardware_entry_failure_reason": 32,
      kvm_valid_regs: 288,
      kvm_dirty_regs: 296,
      "s.regs": 304,
      "s.regs.sregs": 448,
    }, // deno-fmt-ignore
  },
} as const satisfies Record<string, Layout>;

/** Offset of register `name` inside `struct kvm_regs`. */
export function regOffset(name: RegName): number {
  return LAYOUTS.kvm_regs.fields[name];
}

/** A segment register as `struct kvm_segment` holds it. */
export interface Segment {
  /** Base address. */
  base: bigint;
  /** Limit. */
  limit: number;
  /** Selector. */
  selector: number;
  /** Descriptor type (4 bits). */
  type: number;
  /** Present bit. */
  present: number;
  /** Descriptor privilege level. */
  dpl: number;
  /** Default operand size. */
  db: number;
  /** Code/data (1) vs system (0). */
  s: number;
  /** 64-bit code. */
  l: number;
  /** Granularity. */
  g: number;
}

/** Writes `seg` as a `struct kvm_segment` at `off`. */
export function writeSegment(v: DataView, off: number, seg: Segment): void {
  const f = LAYOUTS.kvm_segment.fields;
  v.setBigUint64(off + f.base, seg.base, true);
  v.setUint32(off + f.limit, seg.limit, true);
  v.setUint16(off + f.selector, seg.selector, true);
  for (const k of ["type", "present", "dpl", "db", "s", "l", "g"] as const) {
    v.setUint8(off + f[k], seg[k]);
  }
  v.setUint8(off + f.avl, 0);
  v.setUint8(off + f.unusable, 0);
}
