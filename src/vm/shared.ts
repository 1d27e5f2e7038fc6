/**
 * Shared pages in guest RAM. A `MAP_SHARED` mapping of the guest (of a
 * file, or of anonymous memory once a fork shares it) is the host's own
 * mapping of the same pages laid over that part of the RAM mapping
 * (`mmap(MAP_FIXED)` at the RAM's host address), so KVM shows the guest the
 * host's pages themselves: a file's page cache, seen by `write(2)` at once
 * and written by the kernel, not by a copy written back later; the same
 * pages for every process of the run that maps them (parent and child after
 * fork); one futex word for all of them ({@linkcode Overlays.keyAt}).
 *
 * A file is laid only over the pages up to its end at the time: the host
 * reads guest memory through the RAM mapping, and a read past the end of a
 * mapped file would be a SIGBUS in the host. {@linkcode clipOverlays} takes
 * pages back when a guest truncates the file; a file truncated by another
 * host process under a mapping is not guarded against.
 * @module
 */
import { errno, libc, OsError } from "../kvm/libc.ts";
import { hostFstat, hostSyscall } from "../syscalls/host.ts";

const PAGE = 4096;
const PROT_RW = 3, MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20;
const MAP_NORESERVE = 0x4000;
const NR_DUP = 32, NR_CLOSE = 3;

/** A host mapping laid over guest RAM [start, end). */
export interface Overlay {
  /** Its first guest address (page-aligned). */
  start: number;
  /** Its end (exclusive). */
  end: number;
  /** A host fd of its own (dup'ed) on what is mapped. */
  fd: number;
  /** The offset in that file of `start`. */
  offset: number;
  /** MAP_SHARED on the host; false: a private view (a file open read-only). */
  shared: boolean;
  /** The file's identity on the host ("dev:ino"). */
  id: string;
}

/** Every RAM's overlays, to clip them when a guest truncates a file. */
const live = new Set<Overlays>();

/** The host mappings laid over one guest RAM. */
export class Overlays {
  #list: Overlay[] = [];

  /**
   * None yet, on the RAM whose guest-physical 0 is at host address `host`
   * and whose `size` bytes are the only place an overlay may go.
   */
  constructor(readonly host: bigint, readonly size: number = Infinity) {}

  /** The overlays, by address. */
  get list(): readonly Overlay[] {
    return this.#list;
  }

  /**
   * Lays `len` bytes of host fd `fd` from `offset` over RAM at `start`
   * (page-aligned): MAP_SHARED with `shared` (the fd must be open for
   * writing), else a private copy-on-write view, which the host may write
   * (a syscall's result) without touching the file. Throws OsError.
   */
  add(start: number, len: number, fd: number, offset: number, shared: boolean): void {
    if (len <= 0) return;
    // A host mapping laid anywhere else would be laid over the host's own memory.
    if (!(start >= 0 && start + len <= this.size && start % 4096 === 0 && len % 4096 === 0)) {
      throw new OsError("a shared mapping outside guest RAM", 22);
    }
    const st = hostFstat(fd);
    if (typeof st === "number") throw new OsError("fstat", -st);
    const own = Number(hostSyscall(NR_DUP, fd));
    if (own < 0) throw new OsError("dup", -own);
    this.remove(start, start + len);
    const flags = (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED;
    if (!this.#map(start, len, flags, own, offset)) {
      const e = errno();
      hostSyscall(NR_CLOSE, own);
      throw new OsError("mmap of a shared mapping", e);
    }
    const id = `${st.dev}:${st.ino}`;
    this.#list.push({ start, end: start + len, fd: own, offset, shared, id });
    this.#list.sort((a, b) => a.start - b.start);
    live.add(this);
  }

  /** Puts anonymous zero pages back over [start, end), ending the overlays there. */
  remove(start: number, end: number): void {
    const keep: Overlay[] = [];
    for (const o of this.#list) {
      const s = Math.max(start, o.start), e = Math.min(end, o.end);
      if (s >= e) {
        keep.push(o);
        continue;
      }
      this.#map(s, e - s, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (o.start < s) keep.push({ ...o, end: s, fd: Number(hostSyscall(NR_DUP, o.fd)) });
      if (o.end > e) {
        const fd = Number(hostSyscall(NR_DUP, o.fd));
        keep.push({ ...o, start: e, offset: o.offset + e - o.start, fd });
      }
      hostSyscall(NR_CLOSE, o.fd);
    }
    this.#list = keep.filter((o) => o.fd >= 0);
    if (this.#list.length === 0) live.delete(this);
  }

  /** Ends every overlay (anonymous zero pages in their place). */
  clear(): void {
    if (this.#list.length) this.remove(0, Number.MAX_SAFE_INTEGER);
  }

  /** Lays `from`'s overlays over this RAM too (fork: the same pages, shared). */
  inherit(from: Overlays): void {
    for (const o of from.list) this.add(o.start, o.end - o.start, o.fd, o.offset, o.shared);
  }

  /** The overlay holding guest address `addr`, if any. */
  at(addr: number): Overlay | undefined {
    return this.#list.find((o) => o.start <= addr && addr < o.end);
  }

  /**
   * The futex key of guest address `addr`: the same for every process
   * mapping that byte of that file ("dev:ino:offset"), or undefined for
   * memory of this process alone.
   */
  keyAt(addr: number): string | undefined {
    const o = this.at(addr);
    return o?.shared ? `${o.id}:${o.offset + addr - o.start}` : undefined;
  }

  #map(start: number, len: number, flags: number, fd: number, offset: number): boolean {
    const at = Deno.UnsafePointer.create(this.host + BigInt(start));
    const p = libc().mmap(at, BigInt(len), PROT_RW, flags, fd, BigInt(offset));
    return p !== null && Deno.UnsafePointer.value(p) === this.host + BigInt(start);
  }
}

/**
 * A guest made file `dev:ino` `size` bytes long: every overlay of it gives
 * back its pages past the new end (they read as zeros from then on, where
 * Linux would raise SIGBUS), so the host never reads past a mapped file's end.
 */
export function clipOverlays(id: string, size: number): void {
  const end = Math.ceil(size / PAGE) * PAGE;
  for (const r of live) {
    for (const o of [...r.list]) {
      if (o.id !== id || o.offset + (o.end - o.start) <= end) continue;
      r.remove(Math.max(o.start, o.start + end - o.offset), o.end);
    }
  }
}

/** The identity clipOverlays takes for host fd `fd`, or undefined. */
export function fileId(fd: number): string | undefined {
  const st = hostFstat(fd);
  return typeof st === "number" ? undefined : `${st.dev}:${st.ino}`;
}
