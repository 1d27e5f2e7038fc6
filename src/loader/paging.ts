/**
 * Host-built page tables. The guest never edits them: all of guest RAM is
 * identity-mapped before the first KVM_RUN, with 2 MiB pages above
 * `USER_MIN` and 4 KiB pages below it, where page 0 stays unmapped (NULL
 * dereferences fault) and the system pages are supervisor-only.
 * @module
 */
import { ABI } from "../kernel/abi.ts";
import type { GuestMemory } from "../vm/memory.ts";

const P = 1n, RW = 2n, US = 4n, PS = 0x80n, NX = 1n << 63n;
// Accessed and dirty, set from the start: a shadow MMU (kvm_pvm) otherwise
// writes them into these tables on the first touch of each page, maps a
// page read-only until its first write (a second fault), and prefetches
// only neighbours whose accessed bit is set.
const A = 0x20n, D = 0x40n;
const MIB2 = 0x200000;
const GIB = 0x40000000;

/** The largest guest RAM these tables can describe. */
export const MAX_MEMORY = 64 * GIB;

/**
 * Writes the page tables into guest RAM at `PT_ADDR`; returns CR3. Of the
 * guest kernel's pages below `USER_MIN`, only its code (up to `codeEnd`)
 * is executable, so a jump there from user code (e.g. a rewritten
 * `call *%rax` with a wild number) faults instead of running data; with
 * `stubs`, so is the area where the guest kernel writes rewritten sites'
 * stubs (--rewrite=stub).
 */
export function buildPageTables(
  mem: GuestMemory,
  codeEnd: number = ABI.KSTACK_TOP,
  stubs = false,
): bigint {
  const v = mem.view;
  const pml4 = ABI.PT_ADDR;
  const pdpt = pml4 + 0x1000;
  const pt0 = pml4 + 0x2000; // 4 KiB pages for the first 2 MiB
  const pd = (gib: number) => pml4 + 0x3000 + gib * 0x1000;
  const gibs = Math.ceil(mem.size / GIB);
  if (mem.size > MAX_MEMORY || pd(gibs) > ABI.PT_END) {
    throw new RangeError(`guest memory is limited to ${MAX_MEMORY / GIB} GiB`);
  }
  mem.bytes.fill(0, pml4, pd(gibs));
  const set = (table: number, i: number, value: bigint) =>
    v.setBigUint64(table + i * 8, value, true);

  set(pml4, 0, BigInt(pdpt) | P | RW | US | A);
  for (let g = 0; g < gibs; g++) set(pdpt, g, BigInt(pd(g)) | P | RW | US | A);
  set(pd(0), 0, BigInt(pt0) | P | RW | US | A);
  for (let a = MIB2; a < mem.size; a += MIB2) {
    set(pd(Math.floor(a / GIB)), (a % GIB) / MIB2, BigInt(a) | P | RW | US | PS | A | D);
  }

  const page = (addr: number, phys: bigint, flags: bigint) =>
    set(pt0, addr / ABI.PAGE_SIZE, phys | flags | A | D);
  // Supervisor-only: GDT, IDT, TSS and the exception stack.
  for (let a = ABI.GDT_ADDR; a < ABI.EXC_STACK_TOP; a += ABI.PAGE_SIZE) page(a, BigInt(a), P | RW);
  // Boot info and host-call blocks, read and written by the guest kernel.
  for (let a = ABI.BOOT_INFO_ADDR; a < ABI.PT_ADDR; a += ABI.PAGE_SIZE) {
    page(a, BigInt(a), P | RW | US | NX);
  }
  // The doorbell: a guest page backed by no memslot, so stores to it exit.
  page(ABI.DOORBELL_ADDR, BigInt(ABI.DOORBELL_GPA), P | RW | US | NX);
  // The guest kernel's image and stack, run at the application's level.
  for (let a = ABI.KERNEL_ADDR; a < ABI.KSTACK_TOP; a += ABI.PAGE_SIZE) {
    const code = a < codeEnd || (stubs && a >= ABI.STUB_ADDR && a < ABI.STUB_END);
    page(a, BigInt(a), P | RW | US | (code ? 0n : NX));
  }
  return BigInt(pml4);
}

/**
 * Maps virtual page 0 (read and execute) to the trampoline frame for
 * rewritten syscall sites (`call *%rax` lands at the syscall number): a nop
 * sled over the numbers the kernel knows, then a jump to `entry`; past it
 * int3, so a bad number traps. Call after {@linkcode buildPageTables}.
 */
export function mapTrampoline(mem: GuestMemory, entry: number): void {
  const t = ABI.TRAMPOLINE_PHYS;
  mem.bytes.fill(0xcc, t, t + ABI.PAGE_SIZE); // int3
  // The sled: runs of 0x66 prefixes ending in 0x90, which decode as one
  // nop from any byte, so a call lands on few instructions, not hundreds.
  // Runs of 8 measured fastest here (getpid 44 ns; 106 ns with plain nops).
  for (let i = 0; i < ABI.TRAMPOLINE_SLED; i++) {
    mem.bytes[t + i] = (i + 1) % 8 === 0 || i === ABI.TRAMPOLINE_SLED - 1 ? 0x90 : 0x66;
  }
  // movabs $entry, %r11; jmp *%r11 (r11 is the syscall's to clobber)
  mem.bytes.set([0x49, 0xbb], t + ABI.TRAMPOLINE_SLED);
  mem.view.setBigUint64(t + ABI.TRAMPOLINE_SLED + 2, BigInt(entry), true);
  mem.bytes.set([0x41, 0xff, 0xe3], t + ABI.TRAMPOLINE_SLED + 10);
  const pt0 = ABI.PT_ADDR + 0x2000;
  mem.view.setBigUint64(pt0, BigInt(t) | P | US | A | D, true);
}
