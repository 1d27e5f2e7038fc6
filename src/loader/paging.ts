/**
 * Host-built page tables. The guest never edits them: all of guest RAM is
 * identity-mapped before the first KVM_RUN, with 2 MiB pages above
 * `USER_MIN` and 4 KiB pages below it, where page 0 stays unmapped (NULL
 * dereferences fault) and the system pages are supervisor-only.
 * @module
 */
import { ABI } from "../kernel/abi.ts";
import type { GuestMemory } from "../vm/memory.ts";

const P = 1n, RW = 2n, US = 4n, PS = 0x80n;
const MIB2 = 0x200000;
const GIB = 0x40000000;

/** The largest guest RAM these tables can describe. */
export const MAX_MEMORY = 64 * GIB;

/** Writes the page tables into guest RAM at `PT_ADDR`; returns CR3. */
export function buildPageTables(mem: GuestMemory): bigint {
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

  set(pml4, 0, BigInt(pdpt) | P | RW | US);
  for (let g = 0; g < gibs; g++) set(pdpt, g, BigInt(pd(g)) | P | RW | US);
  set(pd(0), 0, BigInt(pt0) | P | RW | US);
  for (let a = MIB2; a < mem.size; a += MIB2) {
    set(pd(Math.floor(a / GIB)), (a % GIB) / MIB2, BigInt(a) | P | RW | US | PS);
  }

  const page = (addr: number, phys: bigint, flags: bigint) =>
    set(pt0, addr / ABI.PAGE_SIZE, phys | flags);
  // Supervisor-only: GDT, IDT, TSS and the exception stack.
  for (let a = ABI.GDT_ADDR; a < ABI.EXC_STACK_TOP; a += ABI.PAGE_SIZE) page(a, BigInt(a), P | RW);
  // Boot info and host-call blocks, read and written by the guest kernel.
  for (let a = ABI.BOOT_INFO_ADDR; a < ABI.PT_ADDR; a += ABI.PAGE_SIZE) {
    page(a, BigInt(a), P | RW | US);
  }
  // The doorbell: a guest page backed by no memslot, so stores to it exit.
  page(ABI.DOORBELL_ADDR, BigInt(ABI.DOORBELL_GPA), P | RW | US);
  // The guest kernel's image and stack, run at the application's level.
  for (let a = ABI.KERNEL_ADDR; a < ABI.KSTACK_TOP; a += ABI.PAGE_SIZE) {
    page(a, BigInt(a), P | RW | US);
  }
  return BigInt(pml4);
}
