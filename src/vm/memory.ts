/**
 * Guest RAM and the one place where guest pointers are checked.
 *
 * Every address a guest hands to the host goes through
 * {@linkcode GuestMemory.check} (or a method built on it): a range outside
 * user memory becomes `EFAULT`, never a host access.
 * @module
 */
import { addressOf, errno, libc, OsError } from "../kvm/libc.ts";
import { copyNonzero } from "../runner/copy.ts";
import { ABI } from "../kernel/abi.ts";
import { E, SyscallError } from "../syscalls/errno.ts";
import { Overlays } from "./shared.ts";
import type { HighMemory } from "./high.ts";
import { AREA_SIZE as CPU_AREA } from "./percpu.ts";

const PROT_RW = 3, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;
const MADV_DONTNEED = 4, MADV_HUGEPAGE = 14, MADV_NOHUGEPAGE = 15, MADV_POPULATE_WRITE = 23;
const HUGE = 2 * 1024 * 1024;
/** The page vectors of the last fork's copy (see copyFrom). */
let forkPages: [Uint8Array, Uint8Array] | undefined;
// One ArrayBuffer views all of RAM; Deno's views stop at 2 GiB.
const MAX_VIEW = 2 * 1024 * 1024 * 1024;
/**
 * How long after a VM's end the spare's prefault starts: a boot that comes
 * sooner takes the spare first, and no prefault competes with it.
 */
const PREFAULT_DELAY_MS = 5;
/** At most this many 2 MiB chunks are prefaulted for the next VM (64 MiB). */
const MAX_WARM_CHUNKS = 32;
/** The first this many of those (8 MiB) are cleared in place instead (clearForNext). */
const ZERO_IN_PLACE = 4;

let swap: boolean | undefined;

/** Whether the host has swap space (then mincore cannot tell which pages hold data). */
export function hostHasSwap(): boolean {
  if (swap === undefined) {
    try {
      swap = Deno.readTextFileSync("/proc/swaps").trim().split("\n").length > 1;
    } catch {
      swap = true;
    }
  }
  return swap;
}

/** The RAM of the last VM disposed, cleared, kept for the next VM of its size. */
let spare: GuestMemory | undefined;
/** Whether disposed VMs leave their RAM as the spare ({@linkcode keepSpareMemory}). */
let keepSpare = true;
/**
 * The last prefault started: each waits for the one before, so they run
 * one at a time on one of Deno's worker threads (not a new thread each).
 */
let prefaults: Promise<unknown> = Promise.resolve();
/**
 * The prefault due once the process has been quiet: one timer at most.
 * Boots back to back (each `await boot()` resolves in microtasks, so no
 * timer fires between them) used to chain a timer and a promise each, which
 * all stayed alive until the loop ended: ~2.5 KiB a boot.
 */
let due: {
  mem: GuestMemory;
  warm: number[];
  generation: number;
  after?: Promise<unknown>;
  /** When it was released (performance.now()). */
  at: number;
} | undefined;
let dueTimer: ReturnType<typeof setTimeout> | undefined;
/** mincore's answer for the last RAM released (see GuestMemory's #hugeChunks). */
let residency: Uint8Array | undefined;

/** Starts the prefault timer unless one is set; unreferenced: a process with nothing else to do ends. */
function armPrefault(ms: number): void {
  if (dueTimer !== undefined) return;
  const timer = dueTimer = setTimeout(startPrefault, ms);
  Deno.unrefTimer(timer);
}

/**
 * Resolves when the spare RAM is ready: its prefault, on a worker thread,
 * has ended. A benchmark waits for it so that this work does not run
 * beside what it times.
 */
export async function spareMemoryReady(): Promise<void> {
  // The prefault's own delay does not keep the process alive: this one does.
  await new Promise((ok) => setTimeout(ok, PREFAULT_DELAY_MS));
  await prefaults;
}

/**
 * Whether the RAM of a disposed VM is kept, cleared, for the next VM of
 * this process (the default), or unmapped at once. A process that boots
 * once and ends (the CLI) turns it off: clearing and prefaulting would only
 * delay its end.
 */
export function keepSpareMemory(keep: boolean): void {
  keepSpare = keep;
}

/**
 * Unmaps the guest RAM kept for the next VM (see {@linkcode GuestMemory.release});
 * `dropSpareMemory` (machine.ts) drops it with the kept machine.
 */
export function dropSpareRam(): Promise<void> {
  const s = spare;
  spare = undefined;
  return s ? s.free() : Promise.resolve();
}

/** Whether disposed VMs leave their RAM (or their machine) for the next VM. */
export function spareKept(): boolean {
  return keepSpare;
}

/** The quiet time after a release has passed: the prefault of the spare due, if still the spare. */
function startPrefault(): void {
  dueTimer = undefined;
  const d = due;
  if (!d) return;
  // Released again since the timer was set: wait until it has been quiet that long.
  const quiet = performance.now() - d.at;
  if (quiet < PREFAULT_DELAY_MS) return armPrefault(PREFAULT_DELAY_MS - quiet);
  due = undefined;
  if (!d.mem.idle) return;
  prefaults = Promise.all([prefaults, d.after]).then(() => d.mem.prefault(d.warm, d.generation));
}

/**
 * Guest RAM: guest-physical [0, size), identity-mapped in the guest; the
 * per-vCPU area after it (percpu.ts), in the same memory slot; then, as
 * large as RAM, the pool that backs the address space above RAM (high.ts).
 * None of it costs host memory until it is touched.
 */
export class GuestMemory {
  /** Bytes of RAM. */
  readonly size: number;
  /** Bytes of RAM's memory slot: RAM and the per-vCPU area. */
  readonly slotSize: number;
  /** Guest-physical start of the pool (the end of RAM's slot, 2 MiB-aligned). */
  readonly poolBase: number;
  /** Bytes of the pool (as many as RAM). */
  readonly poolSize: number;
  /** The address space above RAM of the process on this memory, once set up. */
  high?: HighMemory;
  /** The pool's memory slot is in the VM (Machine.addPoolSlot): its pages may hold data. */
  poolSlot = false;
  /** Host address of guest-physical 0. */
  readonly host: bigint;
  /** All of RAM as bytes (zero-copy). */
  readonly bytes: Uint8Array;
  /** All of RAM as a DataView (zero-copy). */
  readonly view: DataView;
  /** Host mappings laid over parts of RAM: the guest's MAP_SHARED pages (shared.ts). */
  readonly overlays: Overlays;
  #mapping: Deno.PointerObject;
  #mappingSize: bigint;
  /** How many times this RAM was released (see release). */
  #releases = 0;
  /** Cleared for a next guest and not yet taken (see clearForNext). */
  #idle = false;
  /** The prefault call on a worker thread right now (see release), if any. */
  #inFlight?: Promise<unknown>;

  /**
   * RAM of `size` bytes: the spare a disposed VM left, cleared, if it has
   * that size (its chunks the last guest used already faulted in), or a
   * fresh mapping.
   */
  static take(size: number): GuestMemory {
    const s = spare;
    if (s?.size === size) {
      spare = undefined;
      s.claim();
      return s;
    }
    return new GuestMemory(size);
  }

  /** Maps `size` bytes (a multiple of 2 MiB) aligned for transparent huge pages. */
  constructor(size: number) {
    if (size % HUGE !== 0) throw new RangeError("guest memory must be a multiple of 2 MiB");
    if (size > MAX_VIEW) throw new RangeError("guest memory is limited to 2 GiB for now");
    this.size = size;
    // The per-vCPU blocks of threads other than the first (percpu.ts), in
    // RAM's slot but not identity-mapped: only their own thread reaches them.
    this.slotSize = size + CPU_AREA;
    this.poolBase = Math.ceil(this.slotSize / HUGE) * HUGE;
    this.poolSize = size;
    this.#mappingSize = BigInt(this.poolBase + this.poolSize + HUGE);
    const p = libc().mmap(
      null,
      this.#mappingSize,
      PROT_RW,
      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
      -1,
      0n,
    );
    if (!p || addressOf(p) === 0xffffffffffffffffn) {
      throw new OsError(`mmap of ${size} bytes of guest memory`, errno());
    }
    this.#mapping = p;
    const raw = addressOf(p);
    this.host = (raw + BigInt(HUGE - 1)) & ~BigInt(HUGE - 1);
    this.overlays = new Overlays(this.host, size);
    libc().madvise(this.host, BigInt(size), MADV_HUGEPAGE);
    libc().madvise(this.host + BigInt(this.poolBase), BigInt(this.poolSize), MADV_HUGEPAGE);
    const buf = Deno.UnsafePointerView.getArrayBuffer(
      Deno.UnsafePointer.create(this.host)!,
      this.poolBase + this.poolSize,
    );
    this.bytes = new Uint8Array(buf);
    this.userEnd = size;
    this.view = new DataView(buf);
  }

  /**
   * Where user memory ends: above it the VM keeps what is not the guest
   * program's (page tables, per-vCPU pages). The whole of RAM until set.
   */
  userEnd: number;

  /**
   * Checks that the guest range [addr, addr + len) is user memory and
   * returns addr; throws `SyscallError(EFAULT)` otherwise.
   */
  check(addr: number | bigint, len: number | bigint): number {
    const a = Number(addr), n = Number(len);
    if (
      !(a >= ABI.USER_MIN) || !(n >= 0) || a + n > this.userEnd || !Number.isSafeInteger(a + n)
    ) {
      // Above RAM: where the pool backs it (every chunk backed now).
      if (this.high && a >= this.high.min && n >= 0) return this.high.translate(a, n);
      throw new SyscallError(E.EFAULT, `bad guest address ${a.toString(16)}+${n}`);
    }
    return a;
  }

  /** Host address of a checked guest range, for passing to host syscalls. */
  hostAddress(addr: number | bigint, len: number | bigint): bigint {
    return this.host + BigInt(this.check(addr, len));
  }

  /** A zero-copy view of a checked guest range. */
  slice(addr: number | bigint, len: number | bigint): Uint8Array {
    const a = this.check(addr, len);
    return this.bytes.subarray(a, a + Number(len));
  }

  /**
   * The bytes of a NUL-terminated string at `addr` (zero-copy, NUL
   * excluded) of at most `max` bytes: `tooLong` past that, EFAULT where
   * guest memory ends first.
   */
  cBytes(addr: number | bigint, max = 4096, tooLong: number = E.ENAMETOOLONG): Uint8Array {
    const a = this.check(addr, 1);
    let end = Math.min(this.userEnd, a + max), limit = this.userEnd;
    if (a >= this.size && this.high) {
      // Above RAM: up to the end of the pool run behind it.
      const n = this.high.contiguous(Number(addr), max);
      [end, limit] = [a + n, n < max ? a + n : Infinity];
    }
    const nul = this.bytes.subarray(a, end).indexOf(0);
    if (nul < 0) throw new SyscallError(end === limit ? E.EFAULT : tooLong);
    return this.bytes.subarray(a, a + nul);
  }

  /** Reads a NUL-terminated string of at most `max` bytes (ENAMETOOLONG past it). */
  cString(addr: number | bigint, max = 4096): string {
    return new TextDecoder().decode(this.cBytes(addr, max));
  }

  /** Reads a u64 at a checked guest address. */
  u64(addr: number | bigint): bigint {
    return this.view.getBigUint64(this.check(addr, 8), true);
  }

  /**
   * Makes [addr, addr + len) read as zero. Whole 2 MiB chunks are dropped
   * on the host (their memory is freed); the rest is cleared in place.
   * Dropping part of a chunk would split its huge page for good, and on a
   * shadow MMU every 4 KiB page of it would then fault on its own.
   */
  zero(addr: number, len: number): void {
    if (this.high && addr >= this.high.min) return this.high.zero(addr, addr + len);
    const a = this.check(addr, len);
    const lo = Math.ceil(a / HUGE) * HUGE;
    const hi = Math.floor((a + len) / HUGE) * HUGE;
    if (hi <= lo) {
      this.bytes.fill(0, a, a + len);
      return;
    }
    this.bytes.fill(0, a, lo);
    this.bytes.fill(0, hi, a + len);
    libc().madvise(this.host + BigInt(lo), BigInt(hi - lo), MADV_DONTNEED);
  }

  /**
   * Backs [addr, addr + len) (2 MiB-aligned) with 4 KiB pages only: for
   * memory the guest maps with 4 KiB entries and touches sparsely.
   */
  noHugePages(addr: number, len: number): void {
    libc().madvise(this.host + BigInt(addr), BigInt(len), MADV_NOHUGEPAGE);
  }

  /**
   * Gives the RAM up when its VM is gone. With `reuse` (no thread of the
   * old VM can still run: a KVM_RUN under way would write here), it is
   * kept as the process's spare for the next VM: every page is dropped
   * first, so the next guest reads zeros only, as from fresh memory.
   * Faulting in and clearing a 2 MiB host page costs ~0.25 ms on this
   * nested VM, ~5.5 ms when the outer hypervisor must back it first, and
   * it was on the guest's path; for the spare, a worker thread
   * faults in again the chunks the last guest used as huge pages, while
   * this process does other work: one chunk at a time, starting once the
   * old VM's teardown (`after`) has ended and the process has been quiet
   * for PREFAULT_DELAY_MS, and stopping when a VM takes the spare. A VM
   * created while a chunk is being faulted in waits for it (its
   * KVM_CREATE_VM or mmap needs the mmap lock the fault holds, up to ~6 ms
   * for a 2 MiB page the outer hypervisor has not backed yet), so boots
   * that come back to back get no prefault. Otherwise it is unmapped. No
   * view of it may be used afterwards.
   */
  release(reuse: boolean, after?: Promise<unknown>): void {
    if (!reuse || spare || !keepSpare) return void this.free();
    this.clearForNext(after);
    spare = this;
  }

  /**
   * Clears this RAM for another guest (every page dropped, so it reads as
   * zeros), and has the chunks the last guest used faulted in again once
   * the process is quiet and `after` has resolved, until {@linkcode claim}.
   */
  clearForNext(after?: Promise<unknown>): void {
    this.overlays.clear();
    this.#clearPool();
    const warm = this.#hugeChunks();
    // The first chunks the guest used are cleared in place: they stay
    // resident, and the next guest's first touch costs no host page fault
    // (a 2 MiB page cleared and mapped again: ~0.25 ms each here, which a
    // prefault saves only when the process is quiet before the next boot).
    const inPlace = warm.slice(0, ZERO_IN_PLACE);
    let from = 0;
    for (const c of inPlace) {
      if (c > from) libc().madvise(this.host + BigInt(from), BigInt(c - from), MADV_DONTNEED);
      this.bytes.fill(0, c, c + HUGE);
      from = c + HUGE;
    }
    if (from < this.slotSize) {
      libc().madvise(this.host + BigInt(from), BigInt(this.slotSize - from), MADV_DONTNEED);
    }
    // Undoes noHugePages: the next VM sets its own.
    libc().madvise(this.host, BigInt(this.size), MADV_HUGEPAGE);
    this.userEnd = this.size;
    this.#idle = true;
    this.#releases++;
    const rest = warm.slice(ZERO_IN_PLACE);
    if (rest.length === 0) return;
    // Taken and released again before it starts: the later release's prefault is the one.
    due = { mem: this, warm: rest, generation: this.#releases, after, at: performance.now() };
    armPrefault(PREFAULT_DELAY_MS);
  }

  /** Cleared and waiting for a guest ({@linkcode clearForNext}), not yet claimed. */
  get idle(): boolean {
    return this.#idle;
  }

  /** A guest has this RAM again: a prefault under way stops after its chunk. */
  claim(): void {
    this.#idle = false;
  }

  /** Faults in `warm` (see release) one chunk at a time while this RAM stays the spare. */
  prefault(warm: number[], generation: number): Promise<unknown> {
    const step = (i: number): Promise<unknown> => {
      if (i >= warm.length || !this.#idle || this.#releases !== generation) {
        return Promise.resolve();
      }
      const at = this.host + BigInt(warm[i]);
      const call = this.#inFlight = libc().madvise_bg(at, BigInt(HUGE), MADV_POPULATE_WRITE);
      return call.then(() => {
        if (this.#inFlight === call) this.#inFlight = undefined;
        return step(i + 1);
      });
    };
    return step(0);
  }

  /**
   * Makes this RAM a copy of `from`'s, as fork(2) needs: only the pages
   * `from` has resident are copied (what was never touched reads as zero
   * in both). With `stale` this RAM holds another process's pages (a
   * recycled machine): those `from` lacks are cleared. With swap on the
   * host a page may be out of memory and still hold data, so then
   * everything is copied. `start` and `end` (4 KiB-aligned) limit the copy.
   * With `zeroed` this RAM reads as zero (new, or cleared on its machine's
   * flush thread), so `from`'s all-zero pages are not written (copy.c).
   */
  copyFrom(
    from: GuestMemory,
    start = 0,
    end: number = this.size,
    stale = false,
    zeroed = false,
  ): void {
    if (from.size !== this.size) throw new RangeError("fork: guest memory sizes differ");
    if (start === 0) this.userEnd = from.userEnd;
    const n = (end - start) / 4096, len = BigInt(end - start);
    // mincore's vectors, kept between forks: a fresh 256 KiB each (1 GiB of
    // RAM) cost 0.3 ms to allocate, as much as mincore itself.
    if ((forkPages?.length ?? 0) < n) forkPages = [new Uint8Array(n), new Uint8Array(n)];
    const pages = forkPages![0].subarray(0, n),
      mine = stale ? forkPages![1].subarray(0, n) : undefined;
    if (
      hostHasSwap() || libc().mincore(from.host + BigInt(start), len, pages) !== 0 ||
      (mine && libc().mincore(this.host + BigInt(start), len, mine) !== 0)
    ) {
      this.bytes.set(from.bytes.subarray(start, end), start);
      this.copied += end - start;
      return;
    }
    // Shared pages are not copied: the child lays the same pages over its own.
    for (const o of [...from.overlays.list, ...this.overlays.list]) {
      const a = Math.max(o.start, start), b = Math.min(o.end, end);
      if (a < b) {
        pages.fill(0, (a - start) / 4096, (b - start) / 4096);
        mine?.fill(0, (a - start) / 4096, (b - start) / 4096);
      }
    }
    // Runs of resident pages are found with indexOf, memchr's speed even
    // before V8 has compiled this (a run's first forks: a loop over the
    // vector's words took 1-4 ms there). Linux's mincore writes 1 or 0.
    const next = (v: Uint8Array, value: number, i: number) => {
      const k = v.indexOf(value, i);
      return k < 0 ? n : k;
    };
    // The next page to copy, and the next stale page of this RAM's own.
    let copy = next(pages, 1, 0), old = mine ? next(mine, 1, 0) : n;
    while (copy < n || old < n) {
      if (copy <= old) {
        const end = next(pages, 0, copy), a = start + copy * 4096, b = start + end * 4096;
        if (zeroed) this.copied += copyNonzero(this.host + BigInt(a), from.host + BigInt(a), b - a);
        else {
          this.bytes.set(from.bytes.subarray(a, b), a);
          this.copied += b - a;
        }
        copy = next(pages, 1, end);
        if (old < end) old = next(mine!, 1, end); // those were overwritten
      } else {
        // [old, copy) is not resident in `from`: cleared here.
        const end = Math.min(next(mine!, 0, old), copy);
        this.bytes.fill(0, start + old * 4096, start + end * 4096);
        old = next(mine!, 1, end);
      }
    }
  }

  /** Bytes {@linkcode copyFrom} copied into this RAM since it was last cleared (a fork's). */
  copied = 0;

  /**
   * Gives every page back to the host: the RAM reads as zeros again.
   * `cleared`: it does already (cleared in place, Machine.flushLater).
   */
  clear(cleared = false): void {
    this.overlays.clear();
    this.#clearPool();
    if (!cleared) libc().madvise(this.host, BigInt(this.slotSize), MADV_DONTNEED);
    this.copied = 0;
    this.userEnd = this.size;
  }

  /**
   * Drops the pool's pages and forgets the address space above RAM: the
   * next guest starts with none (its VM adds the pool's slot anew).
   */
  #clearPool(): void {
    this.high = undefined;
    if (!this.poolSlot) return;
    this.poolSlot = false;
    libc().madvise(this.host + BigInt(this.poolBase), BigInt(this.poolSize), MADV_DONTNEED);
  }

  /** Bytes of RAM the host has resident now (mincore), pool excluded. */
  residentBytes(): number {
    const pages = this.#residency();
    if (!pages) return this.size;
    let n = 0;
    for (const b of pages) n += b & 1;
    return n * 4096;
  }

  /**
   * mincore's answer for all of RAM (a byte a page, bit 0 set if resident),
   * or undefined if it failed. One buffer for the process (256 KiB for
   * 1 GiB of RAM): a new one per VM, freed at some later GC, fragmented the
   * C heap (~10 KiB a boot).
   */
  #residency(): Uint8Array | undefined {
    if (residency?.length !== this.size / 4096) residency = new Uint8Array(this.size / 4096);
    return libc().mincore(this.host, BigInt(this.size), residency) === 0 ? residency : undefined;
  }

  /** The whole resident 2 MiB chunks of user memory, by guest address. */
  #hugeChunks(): number[] {
    const pages = this.#residency();
    if (!pages) return [];
    // One byte per page, bit 0 set if resident: four pages per word.
    const words = new Uint32Array(pages.buffer);
    const chunks: number[] = [];
    // User memory only: the VM backs the rest with 4 KiB host pages.
    const first = Math.ceil(ABI.USER_MIN / HUGE), end = Math.floor(this.userEnd / HUGE);
    next: for (let c = first; c < end && chunks.length < MAX_WARM_CHUNKS; c++) {
      for (let w = c * 128; w < c * 128 + 128; w++) {
        if ((words[w] & 0x01010101) !== 0x01010101) continue next;
      }
      chunks.push(c * HUGE);
    }
    return chunks;
  }

  /** Unmaps the RAM: at once, or when the prefault call under way has returned. */
  free(): Promise<void> {
    this.overlays.clear();
    this.#releases++; // a prefault not yet started never starts
    const unmap = () => void libc().munmap(this.#mapping, this.#mappingSize);
    if (this.#inFlight) return this.#inFlight.then(unmap);
    unmap();
    return Promise.resolve();
  }
}
