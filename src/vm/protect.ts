/**
 * Page protections in the host-built page tables (src/loader/paging.ts).
 * User memory starts identity-mapped with 2 MiB pages, present and
 * writable. When the guest kernel asks (HC_PROT: a read-only or
 * no-access mapping, or the pages of a mapped file past its end), the
 * 2 MiB entry is split into a table of 4 KiB entries from a pool at the
 * top of RAM, and the entries are changed.
 *
 * The host writes the tables through its own mapping, which KVM does not
 * see: on kvm_pvm its shadow entries for those pages would keep the old
 * access. Taking access away therefore also flips the host protection of
 * the pages' memory (mprotect twice), whose MMU-notifier call makes KVM
 * drop its entries and flush every vCPU's TLB; the next access walks the
 * new tables. The flip adds PROT_EXEC and takes it away again: one that
 * took write access away for a moment made a vCPU writing there on another
 * thread fail KVM_RUN (EFAULT). Giving access back needs nothing: KVM
 * fixes up the fault.
 * @module
 */
import { libc } from "../kvm/libc.ts";
import type { GuestMemory } from "./memory.ts";

const P = 1n, RW = 2n, US = 4n, PS = 0x80n;
const A = 0x20n, D = 0x40n; // set up front, as in paging.ts
const ADDR = 0x000f_ffff_ffff_f000n;
const PAGE = 0x1000, MIB2 = 0x200000, GIB = 0x40000000;
const PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
const HOST_READ_WRITE = 3, HOST_READ_WRITE_EXEC = 7;

/** What a range of pages is made: as mapped by default, read-only, or not present. */
export type PageAccess = "default" | "read" | "none";

/** The access a guest protection (PROT_*) is enforced as; see mm.c's `restricted`. */
export function accessOf(prot: number): PageAccess {
  if (prot & (PROT_WRITE | PROT_EXEC)) return "default";
  return prot & PROT_READ ? "read" : "none";
}

/** The guest's page tables, as far as protections change them. */
export class PageProtections {
  readonly #mem: GuestMemory;
  readonly #cr3: number;
  readonly #pool: { next: number; end: number };
  readonly #pdCopies: () => number[];
  /** Page-aligned [start, end) ranges past the end of a mapped file (SIGBUS). */
  #bus: [number, number][] = [];
  /** The 4 KiB table of each chunk ever split, by the chunk's address. */
  #tables = new Map<number, number>();

  /**
   * @param cr3 vCPU 0's page-table root
   * @param pool where 4 KiB tables may be allocated: [start, end), page-aligned
   * @param pdCopies the other vCPUs' copies of the first GiB's page directory
   */
  constructor(mem: GuestMemory, cr3: bigint, pool: [number, number], pdCopies: () => number[]) {
    this.#mem = mem;
    this.#cr3 = Number(cr3 & ADDR);
    this.#pool = { next: pool[0], end: pool[1] };
    this.#pdCopies = pdCopies;
  }

  /**
   * The same bookkeeping for `mem`, a copy of this one's memory (a forked
   * child's, whose tables were copied with it).
   */
  cloneFor(mem: GuestMemory, pdCopies: () => number[]): PageProtections {
    const c = new PageProtections(
      mem,
      BigInt(this.#cr3),
      [this.#pool.next, this.#pool.end],
      pdCopies,
    );
    c.#bus = this.#bus.map(([s, e]) => [s, e]);
    c.#tables = new Map(this.#tables);
    return c;
  }

  /**
   * Makes [start, end) (page-aligned user memory) `access`; pages past the
   * end of a file stay not present unless `unmapped` (the mapping is gone).
   * Returns false when the tables cannot be split further (pool used up).
   */
  apply(start: number, end: number, access: PageAccess, unmapped = false): boolean {
    if (unmapped) this.#bus = cut(this.#bus, start, end);
    const flags = access === "none" ? 0n : access === "read" ? P | US | A | D : P | RW | US | A | D;
    let ok = true;
    for (let a = start; a < end;) {
      const chunkEnd = Math.min(end, (Math.floor(a / MIB2) + 1) * MIB2);
      const pt = this.#table(a, access === "default");
      if (pt === undefined) {
        ok = ok && access === "default";
      } else {
        // Entries as two 32-bit halves: RAM is below 4 GiB and the flags are low bits,
        // so the high half is 0 (512 BigInts a chunk cost ~0.1 ms a boot).
        const words = this.#words(), low = Number(flags), busy = this.#bus.length > 0;
        for (let p = a; p < chunkEnd; p += PAGE) {
          const bus = busy && this.#bus.some(([s, e]) => p >= s && p < e);
          const at = (pt + ((p % MIB2) / PAGE) * 8) / 4;
          words[at] = (p | (bus ? 0 : low)) >>> 0;
          words[at + 1] = 0;
        }
        if (access === "default") this.#merge(a, pt);
      }
      a = chunkEnd;
    }
    if (access !== "default" && ok) this.#flush(start, end);
    return ok;
  }

  /** Makes [start, end) not present and reports faults there as SIGBUS. */
  pastEnd(start: number, end: number): boolean {
    if (start >= end) return true;
    this.#bus = [...cut(this.#bus, start, end), [start, end]];
    return this.apply(start, end, "none");
  }

  /** Whether a fault at `addr` is one past the end of a mapped file. */
  isPastEnd(addr: number): boolean {
    return this.#bus.some(([s, e]) => addr >= s && addr < e);
  }

  /**
   * The 4 KiB table for the 2 MiB chunk holding `addr`: split from its
   * 2 MiB entry the first time. With `existingOnly`, undefined for a chunk
   * still mapped whole (nothing to change back).
   */
  #table(addr: number, existingOnly: boolean): number | undefined {
    const v = this.#mem.view;
    const pde = v.getBigUint64(this.#directory(addr).slot, true);
    if (!(pde & PS)) return Number(pde & ADDR);
    if (existingOnly) return undefined;
    const chunk = Math.floor(addr / MIB2) * MIB2;
    let pt = this.#tables.get(chunk);
    if (pt === undefined) {
      if (this.#pool.next >= this.#pool.end) return undefined;
      pt = this.#pool.next;
      this.#pool.next += PAGE;
      this.#tables.set(chunk, pt);
    }
    const keep = Number(pde & (P | RW | US | A | D)), words = this.#words();
    for (let i = 0, at = pt / 4; i < 512; i++, at += 2) {
      words[at] = (chunk + i * PAGE) | keep;
      words[at + 1] = 0;
    }
    this.#setPde(addr, BigInt(pt) | P | RW | US | A);
    return pt;
  }

  /** RAM as 32-bit words (a little-endian host: x86-64), for writing table entries. */
  #words(): Uint32Array {
    const b = this.#mem.bytes;
    return this.#u32 ??= new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  }
  #u32?: Uint32Array;

  /** vCPU 0's page directory for `addr`, and the slot of `addr`'s chunk in it. */
  #directory(addr: number): { pd: number; slot: number } {
    const v = this.#mem.view;
    const pdpt = Number(v.getBigUint64(this.#cr3, true) & ADDR);
    const pd = Number(v.getBigUint64(pdpt + Math.floor(addr / GIB) * 8, true) & ADDR);
    return { pd, slot: pd + ((addr % GIB) / MIB2 | 0) * 8 };
  }

  /** Writes the directory entry for `addr`'s chunk, in every vCPU's copy. */
  #setPde(addr: number, entry: bigint): void {
    const v = this.#mem.view, { pd, slot } = this.#directory(addr);
    v.setBigUint64(slot, entry, true);
    // Other vCPUs have their own copy of the first GiB's directory.
    if (addr < GIB) {
      for (const copy of this.#pdCopies()) v.setBigUint64(copy + (slot - pd), entry, true);
    }
  }

  /**
   * Maps `addr`'s chunk whole again when every one of its 4 KiB entries is
   * back to the default (ld.so's reservation of a library is split for its
   * pages past the end of the file, then mapped over segment by segment):
   * a split chunk costs a shadow MMU a fault per few pages touched. No
   * flush is needed, as no access is taken away. The table stays the
   * chunk's: KVM may still shadow it, so it is never given to another chunk.
   */
  #merge(addr: number, pt: number): void {
    const chunk = Math.floor(addr / MIB2) * MIB2;
    if (this.#bus.some(([s, e]) => s < chunk + MIB2 && e > chunk)) return;
    const v = this.#mem.view, flags = P | RW | US | A | D;
    for (let i = 0; i < 512; i++) {
      if (v.getBigUint64(pt + i * 8, true) !== (BigInt(chunk + i * PAGE) | flags)) return;
    }
    this.#setPde(addr, BigInt(chunk) | flags | PS);
  }

  /**
   * Makes KVM forget its translations of [start, end) (see the module's
   * comment), widened to whole 2 MiB chunks: the host backs guest memory
   * with huge pages, and changing the protection of part of one would
   * split it, which costs more than the faults that follow a wider flush.
   */
  #flush(start: number, end: number): void {
    const exact = Deno.env.get("HX_FLUSH") === "exact";
    const lo = exact ? start : Math.floor(start / MIB2) * MIB2;
    const hi = exact ? end : Math.min(Math.ceil(end / MIB2) * MIB2, this.#mem.size);
    const host = Deno.UnsafePointer.create(this.#mem.host + BigInt(lo));
    const len = BigInt(hi - lo);
    libc().mprotect(host, len, HOST_READ_WRITE_EXEC);
    libc().mprotect(host, len, HOST_READ_WRITE);
  }
}

/** `ranges` without [start, end). */
function cut(ranges: [number, number][], start: number, end: number): [number, number][] {
  const out: [number, number][] = [];
  for (const [s, e] of ranges) {
    if (e <= start || s >= end) out.push([s, e]);
    else {
      if (s < start) out.push([s, start]);
      if (e > end) out.push([end, e]);
    }
  }
  return out;
}
