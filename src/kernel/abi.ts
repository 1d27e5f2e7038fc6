/**
 * The host side of the guest-kernel ABI: the constants and structure
 * offsets of `abi.h`. tests/abi_test.ts compiles a C program against
 * `abi.h` and checks every value here.
 * @module
 */

/** Address-space layout and protocol constants, as in `abi.h`. */
export const ABI = {
  PAGE_SIZE: 0x1000,
  GDT_ADDR: 0x1000,
  IDT_ADDR: 0x2000,
  TSS_ADDR: 0x3000,
  EXC_STACK_TOP: 0x8000,
  PT_ADDR: 0x20000,
  PT_END: 0x80000,
  BOOT_INFO_ADDR: 0x10000,
  SIGACTIONS_ADDR: 0x10800,
  ELF_HINTS_ADDR: 0x13000,
  NR_ELF_HINTS: 256,
  VVAR_ADDR: 0x14000,
  HOSTCALL_ADDR: 0x11000,
  HOSTCALL_STRIDE: 0x100,
  PERCPU_ADDR: 0x12000,
  PERCPU_SIG_OFF: 56,
  FPU_SCRATCH_ADDR: 0x12400,
  FPU_SCRATCH_SIZE: 0xc00,
  DOORBELL_ADDR: 0x80000,
  DOORBELL_GPA: 0x4000000000,
  EXC_DOORBELL_OFF: 0x100,
  KICK_DOORBELL_OFF: 0x800,
  POLL_OFF: 0,
  POLL_ON: 1,
  POLL_ASLEEP: 2,
  KERNEL_ADDR: 0x100000,
  KSTACK_TOP: 0x200000,
  KSTACK_PAGES: 4,
  USER_MIN: 0x200000,
  TRAMPOLINE_PHYS: 0xf000,
  TRAMPOLINE_SLED: 0x200,
  STUB_ADDR: 0x1c0000,
  STUB_FIRST: 0x1c0040,
  STUB_END: 0x1f0000,
  STUB_SIZE: 16,
  REWRITE_OFF: 0,
  REWRITE_LAZY: 1,
  REWRITE_STUB: 2,
  NR_SYSCALLS: 512,
  HC_SYSCALL: 0,
  HC_TRACE: 1,
  HC_CLOCK: 2,
  HC_UNKNOWN: 3,
  HC_ZERO: 4,
  HC_SIGNAL: 5,
  HC_PROT: 6,
  HC_REWRITE: 7,
  HC_MOVE: 8,
  PROT_RESET: 0x100,
  PROT_UNMAP: 0x200,
  HC_POSTED: 0x100,
  ROUTE_LOCAL: 0,
  ROUTE_HOST: 1,
  ROUTE_POLL: 2,
} as const;

/** `BOOT_MAGIC`: "hermitux" in little-endian ASCII. */
export const BOOT_MAGIC = 0x787574696d726568n;

/** Offsets in `struct boot_info`. */
export const BOOT_INFO = {
  size: 1048,
  magic: 0,
  entry: 8,
  user_sp: 16,
  brk_start: 24,
  mmap_min: 32,
  mmap_max: 40,
  mem_size: 48,
  tsc_mult: 56,
  pid: 64,
  ppid: 72,
  uid: 80,
  gid: 88,
  trace: 96,
  rewrite: 104,
  polling: 112,
  spin_ticks: 120,
  uts: 128,
  route: 518,
  high_min: 1032,
  high_max: 1040,
} as const;

/** Offsets in `struct hostcall`. */
export const HOSTCALL = {
  size: 88,
  kind: 0,
  nr: 8,
  arg: 16,
  ret: 64,
  site: 72,
  seq: 80,
  ack: 84,
} as const;

/** Offsets in the kernel image header (`entry.S`). */
export const IMAGE_HEADER = {
  magic: 0,
  start: 8,
  syscall_entry: 16,
  exception_stubs: 24,
  image_end: 32,
  bss_end: 40,
  regions: 48,
  nregions: 56,
  brk_start: 64,
  brk_cur: 72,
  syscall_return: 80,
  zpoline_entry: 88,
  sig_enter_save: 96,
  sig_enter: 104,
  sig_return: 112,
  sig_resume: 120,
  stub_entry: 128,
  mm_lock: 136,
} as const;

/** Offsets in `struct percpu` (at `PERCPU_ADDR` in each vCPU's view). */
export const PERCPU = {
  size: 104,
  saved_user_rsp: 0,
  sigmask: 8,
  sigpending: 16,
  tid: 24,
  clear_child_tid: 32,
  robust_list: 40,
  rseq_area: 48,
  sig_rip: 56,
  sig_rax: 64,
  sig_rdx: 72,
  sig_r11: 80,
  sig_rcx: 88,
  sig_arg: 96,
} as const;

/** `struct region` in mm.c (the guest kernel's mapping list). */
export const REGION = {
  size: 24,
  start: 0,
  end: 8,
  written: 16,
  shared: 17,
  prot: 18,
  ptes: 19,
  hole: 20,
  file: 21,
} as const;
