/**
 * The address space above RAM (docs/MEMORY.md). Guest RAM is identity-mapped
 * (guest-virtual = guest-physical) up to its size; mappings that do not fit
 * there, reservations of 64 MiB or more and fixed addresses beyond it live in
 * [`min`, `max`) (up to 0x7fff_ffff_f000, the top of Linux's user address
 * space), where nothing is backed until it is touched.
 *
 * A first touch faults to the host, which takes a 2 MiB chunk of the pool
 * (guest-physical [RAM size, RAM size + pool), a second memory slot added
 * at the first touch) and maps it, as one 2 MiB page where the mapping
 * allows all of it, else through a table of 4 KiB entries. Chunks next to
 * each other in the guest are kept next to each other in the pool where
 * that can be done, so that a buffer of the guest is one range of host
 * memory for the host calls ({@linkcode HighMemory.translate}). The tables
 * live in pool chunks of their own, out of the guest's reach.
 *
 * The guest kernel tells the host of every mapping above RAM, of its
 * protection changes and of its end (HC_PROT); what a mapping allows is
 * kept here, and the pages of a chunk no mapping holds any more go back to
 * the pool. The pages touched here and in RAM are bounded by the RAM's
 * size (`--mem`).
 * @module
 */
import { libc } from "../kvm/libc.ts";
import { E, SyscallError } from "../syscalls/errno.ts";
import type { GuestMemory } from "./memory.ts";

const P = 1n, RW = 2n, US = 4n, PS = 0x80n, A = 0x20n, D = 0x40n;
const ADDR = 0x000f_ffff_ffff_f000n;
const PAGE = 0x1000, HUGE = 0x200000, GIB = 0x40000000, PML4_SPAN = 512 * GIB;
const MADV_DONTNEED = 4;
const HOST_READ_WRITE = 3, HOST_READ_WRITE_EXEC = 7;
/**
 * At most this many ranges of distinct access: the guest kernel keeps 4,096
 * mappings, each at most three pieces; a forged stream of HC_PROTs gets no
 * more host memory than this.
 */
const MAX_RANGES = 16384;

/** What a page above RAM allows: nothing, reads, or everything. */
export type HighAccess = "none" | "read" | "default";

/** One mapping's pages: [start, end) and what they allow. */
interface Range {
  start: number;
  end: number;
  access: HighAccess;
}

/** Where the machine's pool is and how the VM learns of it. */
export interface PoolSpec {
  /** Guest-physical start of the pool (the RAM's size). */
  base: number;
  /** Its bytes (a multiple of 2 MiB). */
  size: number;
  /** Adds the pool's memory slot to the VM (once, at the first chunk). */
  addSlot: () => void;
}

/** The outcome of a fault above RAM. */
export type FaultOutcome = "mapped" | "signal" | "out of memory";

/** The address space above RAM of one process. */
export class HighMemory {
  /** Lowest address above RAM. */
  readonly min: number;
  /** One past the highest. */
  readonly max: number;
  readonly #mem: GuestMemory;
  readonly #pool: PoolSpec;
  /** vCPU 0's page-table root. */
  readonly #pml4: number;
  /** Where the other vCPUs' copies of the root and first PDPT are (their blocks). */
  readonly #blocks: () => number[];
  #ranges: Range[] = [];
  /** Pool chunk behind each chunk of the guest (by address / 2 MiB). */
  #phys = new Map<number, number>();
  /** Which guest chunk holds each pool chunk; -1 for table chunks. */
  #owner = new Map<number, number>();
  /** The 4 KiB table of each chunk ever split, the PD of each GiB, the PDPT of each 512 GiB. */
  #pts = new Map<number, number>();
  #pds = new Map<number, number>();
  #pdpts = new Map<number, number>();
  /** Table pages left in the current table chunk: [next, end). */
  #tableNext = 0;
  #tableEnd = 0;
  /** The next fresh pool chunk for a chunk with no neighbour (every other one). */
  #bump: number;
  /** Pool chunks in use (data and tables). */
  #used = 0;
  /** RAM's resident bytes when last counted (for the --mem bound). */
  #ramResident = 0;
  /** The last fault's address and how often it came in a row (a guard against a loop). */
  #lastFault = -1;
  #repeats = 0;

  /**
   * The address space [range[0], range[1]) above `mem`'s RAM, with nothing
   * mapped yet.
   * @param cr3 vCPU 0's page-table root
   * @param blocks the other vCPUs' blocks (percpu.ts): their root and PDPT copies
   */
  constructor(
    mem: GuestMemory,
    cr3: bigint,
    pool: PoolSpec,
    range: [number, number],
    blocks: () => number[],
  ) {
    this.#mem = mem;
    this.#pml4 = Number(cr3 & ADDR);
    this.#pool = pool;
    this.#bump = pool.base;
    [this.min, this.max] = range;
    this.#blocks = blocks;
  }

  /** Whether any chunk was backed (the pool's slot is in the VM). */
  get used(): boolean {
    return this.#used > 0;
  }

  /** Bytes of the pool in use. */
  get bytesUsed(): number {
    return this.#used * HUGE;
  }

  /** Whether [addr, addr + len) lies above RAM. */
  holds(addr: number, len = 0): boolean {
    return addr >= this.min && addr + len <= this.max && len >= 0;
  }

  /**
   * The same bookkeeping for `mem`, a copy of this one's memory (a fork
   * child's; its pool chunks copied with {@linkcode copyPool}).
   */
  cloneFor(mem: GuestMemory, pool: PoolSpec, blocks: () => number[]): HighMemory {
    const c = new HighMemory(mem, BigInt(this.#pml4), pool, [this.min, this.max], blocks);
    c.#take(this);
    return c;
  }

  /**
   * Takes over `from`'s state and pool chunks (a vfork child's, which ran
   * on a copy of this memory): chunks only this one held are dropped.
   */
  adopt(from: HighMemory, fromMem: GuestMemory): void {
    for (const p of this.#owner.keys()) {
      if (!from.#owner.has(p)) {
        libc().madvise(this.#mem.host + BigInt(p), BigInt(HUGE), MADV_DONTNEED);
      }
    }
    this.#take(from);
    this.copyPool(fromMem);
  }

  /** Copies `from`'s mappings, chunks and tables; adds the pool's slot if it has chunks. */
  #take(from: HighMemory): void {
    const had = this.#used;
    this.#ranges = from.#ranges.map((r) => ({ ...r }));
    this.#phys = new Map(from.#phys);
    this.#owner = new Map(from.#owner);
    this.#pts = new Map(from.#pts);
    this.#pds = new Map(from.#pds);
    this.#pdpts = new Map(from.#pdpts);
    [this.#tableNext, this.#tableEnd, this.#bump] = [from.#tableNext, from.#tableEnd, from.#bump];
    this.#used = from.#used;
    if (had === 0 && this.#used > 0) this.#pool.addSlot();
  }

  /** Copies every pool chunk in use from `from`'s memory to this one's (fork, vfork's end). */
  copyPool(from: GuestMemory): void {
    for (const p of this.#owner.keys()) this.#mem.copyFrom(from, p, p + HUGE);
  }

  /**
   * HC_PROT above RAM: [start, end) (page-aligned) now allows `access`,
   * or with `unmap` is no longer mapped (its pages go back to the pool).
   */
  protect(start: number, end: number, access: HighAccess, unmap: boolean): void {
    if (!this.holds(start, end - start) || end <= start) return;
    const kept = this.#ranges.filter((r) => r.end <= start || r.start >= end);
    for (const r of this.#ranges) {
      if (r.end <= start || r.start >= end) continue;
      if (r.start < start) kept.push({ start: r.start, end: start, access: r.access });
      if (r.end > end) kept.push({ start: end, end: r.end, access: r.access });
    }
    if (!unmap) kept.push({ start, end, access });
    if (kept.length > MAX_RANGES) return;
    this.#ranges = kept.sort((a, b) => a.start - b.start);
    for (const c of this.#backedIn(start, end)) {
      const p = this.#phys.get(c)!;
      if (unmap) {
        if (!this.#ranges.some((r) => r.start < (c + 1) * HUGE && r.end > c * HUGE)) {
          this.#release(c, p);
          continue;
        }
        const lo = Math.max(start, c * HUGE), hi = Math.min(end, (c + 1) * HUGE);
        this.#mem.bytes.fill(0, p + lo - c * HUGE, p + hi - c * HUGE);
      }
      this.#writeChunk(c);
      this.#flush(p);
    }
  }

  /** Makes [start, end) read as zero (MADV_DONTNEED, HC_ZERO): whole chunks go back to the pool. */
  zero(start: number, end: number): void {
    if (!this.holds(start, end - start)) throw new SyscallError(E.EFAULT);
    for (const c of this.#backedIn(start, end)) {
      const p = this.#phys.get(c)!;
      const lo = Math.max(start, c * HUGE), hi = Math.min(end, (c + 1) * HUGE);
      if (hi - lo === HUGE) {
        this.#release(c, p);
      } else {
        this.#mem.bytes.fill(0, p + lo - c * HUGE, p + hi - c * HUGE);
      }
    }
  }

  /**
   * A page fault at `addr` (error code `errorCode`): "mapped" when the
   * page was backed just now (the access may be retried), "signal" when
   * the mapping does not allow it, "out of memory" past the bound.
   */
  fault(addr: number, errorCode: number): FaultOutcome {
    const r = this.#rangeAt(addr);
    if (!r || r.access === "none" || (errorCode & 2 && r.access === "read")) return "signal";
    const c = Math.floor(addr / HUGE);
    if (this.#phys.has(c)) {
      // Backed and allowed: a fault from before the entry was written (another
      // vCPU's). A few in a row at one address mean the entry is not enough.
      this.#repeats = addr === this.#lastFault ? this.#repeats + 1 : 0;
      this.#lastFault = addr;
      if (this.#repeats > 3) return "signal";
      this.#flush(this.#phys.get(c)!);
      return "mapped";
    }
    return this.#back(c) ? "mapped" : "out of memory";
  }

  /**
   * The guest-physical address of [addr, addr + len), mapped above RAM,
   * for the host to read or write: every chunk of it is backed now, and
   * they must lie in one run of the pool (EFAULT otherwise, as for a range
   * that is not mapped).
   */
  translate(addr: number, len: number): number {
    if (!this.holds(addr, len) || !this.#covered(addr, addr + len, true)) {
      throw new SyscallError(E.EFAULT, `bad guest address ${addr.toString(16)}+${len}`);
    }
    if (len === 0) return this.#pool.base;
    const first = Math.floor(addr / HUGE), last = Math.floor((addr + len - 1) / HUGE);
    for (let c = first; c <= last; c++) {
      if (!this.#phys.has(c) && !this.#back(c)) {
        throw new SyscallError(E.EFAULT, "guest memory (--mem) used up");
      }
      if (c > first && this.#phys.get(c) !== this.#phys.get(c - 1)! + HUGE) {
        throw new SyscallError(E.EFAULT, `guest buffer at ${addr.toString(16)} is not one range`);
      }
    }
    return this.#phys.get(first)! + (addr - first * HUGE);
  }

  /**
   * mremap above RAM: the backed pages of [from, from + len) go to `to`
   * (page-aligned; its range fresh): whole chunks by their entries when the
   * distance is a multiple of 2 MiB, the rest copied page by page. False
   * when it cannot be done (the guest kernel then copies).
   */
  move(from: number, to: number, len: number): boolean {
    if (
      !this.holds(from, len) || !this.holds(to, len) || (from | to | len) % PAGE ||
      (to < from + len && from < to + len)
    ) return false;
    const delta = to - from;
    try {
      for (const c of this.#backedIn(from, from + len)) {
        const p = this.#phys.get(c)!;
        const lo = Math.max(from, c * HUGE), hi = Math.min(from + len, (c + 1) * HUGE);
        const d = c + delta / HUGE;
        if (delta % HUGE === 0 && hi - lo === HUGE && !this.#phys.has(d)) {
          this.#phys.delete(c);
          this.#phys.set(d, p);
          this.#owner.set(p, d);
          this.#writeChunk(c);
          this.#writeChunk(d);
          this.#flush(p);
          continue;
        }
        for (let a = lo; a < hi; a += PAGE) {
          const src = p + (a - c * HUGE);
          this.#mem.bytes.copyWithin(this.translate(a + delta, PAGE), src, src + PAGE);
        }
      }
    } catch (e) {
      if (e instanceof SyscallError) return false;
      throw e;
    }
    return true;
  }

  /** How many bytes from `addr` on lie in one run of the pool (at most `max`), for strings. */
  contiguous(addr: number, max: number): number {
    const c = Math.floor(addr / HUGE);
    let n = (c + 1) * HUGE - addr;
    for (let d = c + 1; n < max && this.#phys.get(d) === this.#phys.get(d - 1)! + HUGE; d++) {
      n += HUGE;
    }
    return Math.min(n, max);
  }

  /**
   * The backed chunks that [start, end) overlaps, in order: looked up one by
   * one, or for a range of more chunks than are backed (a reservation of
   * terabytes) picked from those backed.
   */
  #backedIn(start: number, end: number): number[] {
    const first = Math.floor(start / HUGE), last = Math.ceil(end / HUGE);
    if (last - first > this.#phys.size) {
      return [...this.#phys.keys()].filter((c) => c >= first && c < last).sort((a, b) => a - b);
    }
    const out: number[] = [];
    for (let c = first; c < last; c++) if (this.#phys.has(c)) out.push(c);
    return out;
  }

  /** The mapping holding `addr`, if any. */
  #rangeAt(addr: number): Range | undefined {
    return this.#ranges.find((r) => r.start <= addr && addr < r.end);
  }

  /** Whether mappings cover all of [start, end) (`usable`: none of it PROT_NONE). */
  #covered(start: number, end: number, usable = false): boolean {
    let at = start;
    for (const r of this.#ranges) {
      if (r.end <= at) continue;
      if (r.start > at || (usable && r.access === "none")) return false;
      at = r.end;
      if (at >= end) return true;
    }
    return at >= end;
  }

  /** Takes a pool chunk for guest chunk `c` and maps it; false past the bound. */
  #back(c: number): boolean {
    const p = this.#takeChunk(c);
    if (p === undefined) return false;
    this.#phys.set(c, p);
    this.#owner.set(p, c);
    if (!this.#writeChunk(c)) return false;
    return true;
  }

  /**
   * A free pool chunk: next to a neighbour's in the pool if free, else a
   * fresh one with a free chunk above it (for the next chunk of the guest),
   * else any; undefined when the pool or the bound is used up.
   */
  #takeChunk(c: number): number | undefined {
    if (!this.#budget()) return undefined;
    const end = this.#pool.base + this.#pool.size;
    const free = (p: number) => p >= this.#pool.base && p < end && !this.#owner.has(p);
    const prev = this.#phys.get(c - 1), next = this.#phys.get(c + 1);
    let p: number | undefined;
    if (prev !== undefined && free(prev + HUGE)) p = prev + HUGE;
    else if (next !== undefined && free(next - HUGE)) p = next - HUGE;
    else {
      while (this.#bump < end && !free(this.#bump)) this.#bump += HUGE;
      if (this.#bump < end) {
        p = this.#bump;
        this.#bump += 2 * HUGE;
      } else {
        for (let q = this.#pool.base; q < end && p === undefined; q += HUGE) if (free(q)) p = q;
      }
    }
    if (p === undefined) return undefined;
    if (this.#used++ === 0) this.#pool.addSlot();
    return p;
  }

  /**
   * Whether one more chunk keeps what the guest has touched, in RAM and
   * here, within the RAM's size. RAM's resident pages are counted again
   * (mincore) only when the last count says no.
   */
  #budget(): boolean {
    const limit = this.#mem.size, more = (this.#used + 1) * HUGE;
    if (more + this.#ramResident <= limit) return true;
    this.#ramResident = this.#mem.residentBytes();
    return more + this.#ramResident <= limit;
  }

  /** Gives chunk `c`'s pool chunk `p` back: its pages dropped (zeros next time), its entry gone. */
  #release(c: number, p: number): void {
    this.#phys.delete(c);
    this.#owner.delete(p);
    this.#used--;
    this.#writeChunk(c);
    this.#flush(p);
    libc().madvise(this.#mem.host + BigInt(p), BigInt(HUGE), MADV_DONTNEED);
  }

  /** A zeroed 4 KiB page for a table, from a pool chunk kept for tables. */
  #tablePage(): number | undefined {
    if (this.#tableNext >= this.#tableEnd) {
      const p = this.#takeChunk(-2);
      if (p === undefined) return undefined;
      this.#owner.set(p, -1);
      [this.#tableNext, this.#tableEnd] = [p, p + HUGE];
    }
    const t = this.#tableNext;
    this.#tableNext += PAGE;
    this.#mem.bytes.fill(0, t, t + PAGE);
    return t;
  }

  /**
   * Writes chunk `c`'s directory entry from what its pages allow: a 2 MiB
   * page when all of it allows everything, else a table of 4 KiB entries;
   * none when it is not backed. False when no table page is left.
   */
  #writeChunk(c: number): boolean {
    const va = c * HUGE, p = this.#phys.get(c);
    const pd = this.#directory(va, p !== undefined);
    if (pd === undefined) return p === undefined;
    const slot = pd + (Math.floor(va / HUGE) % 512) * 8, v = this.#mem.view;
    if (p === undefined) {
      v.setBigUint64(slot, 0n, true);
      return true;
    }
    const flags = new Array<bigint>(512).fill(0n);
    let whole = true;
    for (const r of this.#ranges) {
      if (r.end <= va || r.start >= va + HUGE) continue;
      const f = r.access === "default"
        ? P | RW | US | A | D
        : r.access === "read"
        ? P | US | A | D
        : 0n;
      const lo = Math.max(r.start, va), hi = Math.min(r.end, va + HUGE);
      for (let a = lo; a < hi; a += PAGE) flags[(a - va) / PAGE] = f;
    }
    for (const f of flags) if (f !== (P | RW | US | A | D)) whole = false;
    if (whole) {
      v.setBigUint64(slot, BigInt(p) | P | RW | US | PS | A | D, true);
      return true;
    }
    let pt = this.#pts.get(c);
    if (pt === undefined) {
      pt = this.#tablePage();
      if (pt === undefined) return false;
      this.#pts.set(c, pt);
    }
    flags.forEach((f, i) => v.setBigUint64(pt! + i * 8, f ? BigInt(p + i * PAGE) | f : 0n, true));
    v.setBigUint64(slot, BigInt(pt) | P | RW | US | A, true);
    return true;
  }

  /**
   * The page directory for `va`, made (with its PDPT) when `make`;
   * undefined when it is not there or no table page is left.
   */
  #directory(va: number, make: boolean): number | undefined {
    const gib = Math.floor(va / GIB);
    let pd = this.#pds.get(gib);
    if (pd !== undefined || !make) return pd;
    const top = Math.floor(va / PML4_SPAN), v = this.#mem.view;
    let pdpt: number | undefined;
    if (top === 0) {
      pdpt = Number(v.getBigUint64(this.#pml4, true) & ADDR);
    } else {
      pdpt = this.#pdpts.get(top);
      if (pdpt === undefined) {
        pdpt = this.#tablePage();
        if (pdpt === undefined) return undefined;
        this.#pdpts.set(top, pdpt);
        // Every vCPU has a root of its own: the entry goes in each.
        const e = BigInt(pdpt) | P | RW | US | A;
        for (const root of [this.#pml4, ...this.#blocks()]) v.setBigUint64(root + top * 8, e, true);
      }
    }
    pd = this.#tablePage();
    if (pd === undefined) return undefined;
    this.#pds.set(gib, pd);
    const e = BigInt(pd) | P | RW | US | A, i = gib % 512;
    v.setBigUint64(pdpt + i * 8, e, true);
    // The first 512 GiB's PDPT has a copy per vCPU too (percpu.ts).
    if (top === 0) { for (const b of this.#blocks()) v.setBigUint64(b + PAGE + i * 8, e, true); }
    return pd;
  }

  /**
   * Makes KVM forget its translations to pool chunk `p` (see protect.ts):
   * the host's protection of its memory flipped and back, whose MMU
   * notifier drops them on every vCPU.
   */
  #flush(p: number): void {
    const at = Deno.UnsafePointer.create(this.#mem.host + BigInt(p));
    libc().mprotect(at, BigInt(HUGE), HOST_READ_WRITE_EXEC);
    libc().mprotect(at, BigInt(HUGE), HOST_READ_WRITE);
  }
}
