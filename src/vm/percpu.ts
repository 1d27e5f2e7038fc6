/**
 * Per-vCPU pages. vCPU 0 runs on the page tables of src/loader/paging.ts;
 * every other vCPU gets a block after guest RAM (in RAM's memory slot, not
 * identity-mapped, so no other thread can write it) holding its own
 * page-table root and private copies of the pages the guest kernel keeps
 * per-thread state in (abi.h): the exception stack, the host-call block,
 * `struct percpu` and the kernel stack. Its tables share everything else.
 * @module
 */
import { ABI } from "../kernel/abi.ts";
import type { GuestMemory } from "./memory.ts";

/** Bytes of one vCPU's block. */
export const BLOCK_SIZE = 0x10000;
/** vCPUs (threads alive at once) the per-CPU area has room for, vCPU 0 included. */
export const MAX_CPUS = 128;
/** Bytes after guest RAM for vCPUs 1.. MAX_CPUS - 1 (memory.ts's CPU_AREA). */
export const AREA_SIZE = (MAX_CPUS - 1) * BLOCK_SIZE;

const KSTACK_LOW = ABI.KSTACK_TOP - ABI.KSTACK_PAGES * ABI.PAGE_SIZE;
/** The pages each vCPU has its own copy of, in block order after the 4 table pages. */
const PRIVATE: readonly number[] = [
  0x4000,
  0x5000,
  0x6000,
  0x7000, // exception stack, below EXC_STACK_TOP
  ABI.HOSTCALL_ADDR,
  ABI.PERCPU_ADDR,
  ...Array.from({ length: ABI.KSTACK_PAGES }, (_, i) => KSTACK_LOW + i * ABI.PAGE_SIZE),
];
const TABLES = 4; // PML4, PDPT, PD for the first GiB, PT for the first 2 MiB

/** Where vCPU `id`'s block starts in guest-physical memory: after RAM. */
export function blockOf(mem: GuestMemory, id: number): number {
  return mem.size + (id - 1) * BLOCK_SIZE;
}

/** Where vCPU `id`'s copy of the first GiB's page directory is (see {@linkcode buildCpuTables}). */
export function pdCopyOf(mem: GuestMemory, id: number): number {
  return blockOf(mem, id) + 2 * ABI.PAGE_SIZE;
}

/**
 * The guest-physical address behind virtual `va` for vCPU `id`: its own
 * frame for a private page, the identity map otherwise.
 */
export function physOf(mem: GuestMemory, id: number, va: number): number {
  if (id === 0) return va;
  const page = va - (va % ABI.PAGE_SIZE);
  const k = PRIVATE.indexOf(page);
  if (k < 0) return va;
  return blockOf(mem, id) + (TABLES + k) * ABI.PAGE_SIZE + (va - page);
}

/**
 * Writes vCPU `id`'s page tables (copies of vCPU 0's with the private pages
 * swapped in), clears its private pages and returns its CR3.
 */
export function buildCpuTables(mem: GuestMemory, id: number, cr3: bigint): bigint {
  const v = mem.view, block = blockOf(mem, id);
  const ADDR = 0x000f_ffff_ffff_f000n;
  mem.bytes.fill(0, block, block + BLOCK_SIZE);
  const copy = (from: number, to: number) => mem.bytes.copyWithin(to, from, from + ABI.PAGE_SIZE);
  const entry = (table: number, i: number) => v.getBigUint64(table + i * 8, true);
  const set = (table: number, i: number, target: number, old: bigint) =>
    v.setBigUint64(table + i * 8, BigInt(target) | (old & ~ADDR), true);
  const [pml4, pdpt, pd, pt] = [0, 1, 2, 3].map((i) => block + i * ABI.PAGE_SIZE);
  const pml40 = Number(cr3 & ADDR);
  const pdpt0 = Number(entry(pml40, 0) & ADDR);
  const pd0 = Number(entry(pdpt0, 0) & ADDR);
  const pt0 = Number(entry(pd0, 0) & ADDR);
  copy(pml40, pml4);
  copy(pdpt0, pdpt);
  copy(pd0, pd);
  copy(pt0, pt);
  set(pml4, 0, pdpt, entry(pml40, 0));
  set(pdpt, 0, pd, entry(pdpt0, 0));
  set(pd, 0, pt, entry(pd0, 0));
  PRIVATE.forEach((page, k) => {
    const i = page / ABI.PAGE_SIZE;
    set(pt, i, block + (TABLES + k) * ABI.PAGE_SIZE, entry(pt0, i));
  });
  return BigInt(pml4);
}

/**
 * Copies vCPU `id`'s private pages in `parent` over vCPU 0's in `mem`: in
 * a forked copy of memory, the thread that forked becomes the child's
 * first thread.
 */
export function adoptCpuPages(mem: GuestMemory, id: number, parent: GuestMemory): void {
  if (id === 0) return;
  for (const page of PRIVATE) {
    const from = physOf(parent, id, page);
    mem.bytes.set(parent.bytes.subarray(from, from + ABI.PAGE_SIZE), page);
  }
}
