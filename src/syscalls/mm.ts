/**
 * File mappings. The guest kernel reserves the address range and asks the
 * host to fill it: the file's bytes are copied into guest memory (the rest
 * of the last page reads as zero). A MAP_SHARED mapping is remembered and
 * written back to its file on msync, on munmap (the guest kernel reports
 * it) and when the process ends, so writes reach the file as on Linux at
 * those points. The write-back never changes the file's size (only bytes
 * within the file's size at that moment are written) and writes only the
 * bytes that changed through the mapping since they were read or last
 * written back, so what write(2) put in the rest of the file stays.
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { relroChunk } from "../loader/relro.ts";
import { bufferAddress, hostFstat, hostSyscall } from "./host.ts";
import type { Process, SyscallModule } from "./registry.ts";
import { pathToCString } from "../vfs/path.ts";

const PAGE = 4096;
const PROT_WRITE = 2, PROT_EXEC = 4, MAP_SHARED = 1, MAP_TYPE = 0xf;
const MS_ASYNC = 1, MS_INVALIDATE = 2, MS_SYNC = 4;
const NR = { pread64: 17, pwrite64: 18, dup: 32, close: 3, fcntl: 72, openat: 257 } as const;
const F_GETFL = 3, O_ACCMODE = 3, O_WRONLY = 1, O_RDWR = 2, O_APPEND = 0o2000;
const O_CLOEXEC = 0o2000000, AT_FDCWD = -100;
const S_IFMT = 0o170000, S_IFREG = 0o100000;
/** Changed runs closer than this are written back as one (see writeChanged). */
const MERGE_GAP = 256;
/** The most bytes one merged write-back covers. */
const MAX_GROUP = 1 << 20;

/** A MAP_SHARED file mapping the host writes back. */
interface Shared {
  start: number;
  end: number;
  /** A host fd of its own, so closing the guest's fd does not end it. */
  hostFd: number;
  offset: number;
  /**
   * The bytes at [start, start + base.length) as read from the file or last
   * written back to it; past them the mapping started as zeros. A byte the
   * mapping holds unchanged from here is never written back.
   */
  base: Uint8Array;
}

function sharedOf(p: Process): Shared[] {
  let s = p.state.get("sharedMappings") as Shared[] | undefined;
  if (!s) p.state.set("sharedMappings", s = []);
  return s;
}

/** Writes [lo, hi) of every shared mapping back to its file. */
function writeBack(p: Process, lo: number, hi: number): void {
  for (const m of sharedOf(p)) {
    const s = Math.max(lo, m.start);
    let e = Math.min(hi, m.end);
    if (s >= e) continue;
    // As on Linux, a shared mapping never changes the file's size: what
    // lies past the end of the file now is not written.
    const st = hostFstat(m.hostFd);
    if (typeof st === "number") continue;
    if ((st.mode & S_IFMT) === S_IFREG) e = Math.min(e, m.start + st.size - m.offset);
    if (s < e) writeChanged(p, m, s - m.start, e - m.start);
  }
}

/** Whether no byte of the 32-bit word `x` is zero. */
const noZeroByte = (x: number) => ((x - 0x01010101) & ~x & 0x80808080) === 0;

/**
 * The runs [from, to) (pairs, mapping-relative) where the mapping `m` holds
 * bytes that differ from `m.base` (zeros past its end) within [lo, hi).
 */
function changedRuns(p: Process, m: Shared, lo: number, hi: number): number[] {
  const runs: number[] = [], mid = Math.min(hi, Math.max(lo, m.base.length));
  let open = scan(p.mem.bytes, m.start, m.base, lo, mid, runs, -1);
  open = scan(p.mem.bytes, m.start, undefined, mid, hi, runs, open);
  if (open >= 0) runs.push(open, hi);
  return runs;
}

/**
 * Adds to `runs` the runs of [from, to) where `cur` at `at` differs from
 * `ref` (zeros if undefined), continuing the run open from `run` (-1:
 * none); returns where the run still open at `to` starts, or -1. Compares
 * a word at a time where it can (`at` is page-aligned, `ref` starts its
 * own buffer).
 */
function scan(
  cur: Uint8Array,
  at: number,
  ref: Uint8Array | undefined,
  from: number,
  to: number,
  runs: number[],
  run: number,
): number {
  const cur32 = new Int32Array(cur.buffer, cur.byteOffset, cur.length >> 2);
  const ref32 = ref ? new Int32Array(ref.buffer, ref.byteOffset, ref.length >> 2) : undefined;
  const diff = (i: number) => cur32[(at + i) >> 2] ^ (ref32 ? ref32[i >> 2] : 0);
  let i = from;
  while (i < to) {
    if ((i & 3) === 0) {
      // Skip whole words: unchanged ones outside a run, wholly changed ones in one.
      if (run < 0) { while (i + 4 <= to && diff(i) === 0) i += 4; }
      else while (i + 4 <= to && noZeroByte(diff(i))) i += 4;
      if (i >= to) break;
    }
    const changed = cur[at + i] !== (ref ? ref[i] : 0);
    if (changed && run < 0) run = i;
    else if (!changed && run >= 0) {
      runs.push(run, i);
      run = -1;
    }
    i++;
  }
  return run;
}

/**
 * pwrite(2)s all of [addr, addr + len) at `pos`. An error loses the bytes,
 * as a failed write-back does on Linux.
 */
function pwriteAll(fd: number, addr: bigint, len: number, pos: number): void {
  let done = 0;
  while (done < len) {
    const r = hostSyscall(NR.pwrite64, fd, addr + BigInt(done), len - done, pos + done);
    if (r === BigInt(-E.EINTR)) continue;
    if (r <= 0n) return;
    done += Number(r);
  }
}

/** Copies src[from, to) to dst at `at` (short runs without a subarray each). */
function copyRun(dst: Uint8Array, at: number, src: Uint8Array, from: number, to: number): void {
  if (to - from > 64) dst.set(src.subarray(from, to), at);
  else for (let i = from; i < to; i++) dst[at++] = src[i];
}

/**
 * Writes the bytes of [lo, hi) (mapping-relative) that changed through the
 * mapping to the file. They are taken into the base first and written from
 * there, so a byte another thread changes meanwhile differs from the base
 * and goes at the next write-back. Changed runs close together go as one
 * write of the file's bytes (read back first) with the runs laid over
 * them, so one byte changed in every few costs two host calls, not one per
 * byte, and the bytes between still are the file's.
 */
function writeChanged(p: Process, m: Shared, lo: number, hi: number): void {
  const runs = changedRuns(p, m, lo, hi);
  if (runs.length === 0) return;
  const cur = p.mem.bytes;
  // The base grows when the file grew under the mapping and was written there.
  const need = runs[runs.length - 1];
  if (need > m.base.length) {
    const grown = new Uint8Array(need);
    grown.set(m.base);
    m.base = grown;
  }
  const base = m.base, baseAt = bufferAddress(base);
  for (let r = 0; r < runs.length; r += 2) {
    copyRun(base, runs[r], cur, m.start + runs[r], m.start + runs[r + 1]);
  }
  for (let k = 0; k < runs.length;) {
    // A group of runs [runs[k], runs[j - 1]) with small gaps between them.
    let j = k + 2;
    while (
      j < runs.length && runs[j] - runs[j - 1] < MERGE_GAP && runs[j + 1] - runs[k] <= MAX_GROUP
    ) j += 2;
    const from = runs[k], to = runs[j - 1];
    const buf = j === k + 2 ? undefined : new Uint8Array(to - from);
    const bufAt = buf && bufferAddress(buf);
    if (
      !buf ||
      Number(hostSyscall(NR.pread64, m.hostFd, bufAt!, buf.length, m.offset + from)) !== buf.length
    ) { // one run, or the file changed size meanwhile: one write per run
      for (let r = k; r < j; r += 2) {
        const a = runs[r], n = runs[r + 1] - a;
        pwriteAll(m.hostFd, baseAt + BigInt(a), n, m.offset + a);
      }
    } else {
      for (let r = k; r < j; r += 2) copyRun(buf, runs[r] - from, base, runs[r], runs[r + 1]);
      pwriteAll(m.hostFd, bufAt!, buf.length, m.offset + from);
    }
    k = j;
  }
}

/**
 * A host fd of its own for writing a shared mapping of `hostFd` back: a
 * dup, or where the file is open with O_APPEND (with which pwrite appends)
 * the file opened again without it.
 */
function writeBackFd(hostFd: number, flags: number): number {
  if (flags & O_APPEND) {
    const path = bufferAddress(pathToCString(`/proc/self/fd/${hostFd}`));
    const fd = Number(hostSyscall(NR.openat, AT_FDCWD, path, O_RDWR | O_CLOEXEC));
    if (fd >= 0) return fd;
  }
  return Number(hostSyscall(NR.dup, hostFd));
}

/** Writes back and forgets every shared mapping: the process is ending. */
export function flushSharedMappings(p: Process): void {
  const all = sharedOf(p);
  writeBack(p, 0, Number.MAX_SAFE_INTEGER);
  for (const m of all) hostSyscall(NR.close, m.hostFd);
  all.length = 0;
}

/** A file mapping the guest kernel asked the host to fill. */
export interface FileMapping {
  start: number;
  end: number;
  /** File offset at `start`. */
  offset: number;
  /** The file's guest path (as opened), if known. */
  path?: string;
}

const FILES = "mm.files";
const MAX_FILES = 1024;

/**
 * The file mappings made so far, oldest first (a later one over the same
 * addresses replaces the earlier): for /proc/self/maps and for naming
 * library code in crash reports. Only guest regions marked as file
 * mappings (abi.h `struct region.file`) should be looked up here.
 */
export function fileMappings(p: Process): readonly FileMapping[] {
  return (p.state.get(FILES) as FileMapping[] | undefined) ?? [];
}

function recordFile(p: Process, m: FileMapping): void {
  let all = p.state.get(FILES) as FileMapping[] | undefined;
  if (!all) p.state.set(FILES, all = []);
  // What the new mapping covers whole is gone.
  const keep = all.filter((o) => o.start < m.start || o.end > m.end);
  keep.push(m);
  if (keep.length > MAX_FILES) keep.splice(0, keep.length - MAX_FILES);
  p.state.set(FILES, keep);
}

const EXEC_HOOK = "execMapping";

/**
 * What runs after a private file mapping with PROT_EXEC is filled (a
 * library's text, as ld.so maps it): `--rewrite=static` patches its sites.
 */
export type ExecMappingHook = (hostFd: number, offset: number, start: number, len: number) => void;

const PAST_END_HOOK = "mm.pastEnd";

/** Called with the page-aligned part of a file mapping past the end of its file. */
export type PastEndHook = (start: number, end: number) => void;

/** Installs `hook` for the pages of `p`'s file mappings past their file's end. */
export function onPastEnd(p: Process, hook: PastEndHook): void {
  p.state.set(PAST_END_HOOK, hook);
}

/** Installs `hook` for `p`'s executable file mappings. */
export function onExecMapping(p: Process, hook: ExecMappingHook): void {
  p.state.set(EXEC_HOOK, hook);
}

const MEMPOLICY = "mm.policy";

/** A node mask argument of maxnode bits (zeroed when `clear`), as Linux sizes it. */
function nodeMask(p: Process, addr: bigint, maxnode: bigint, clear = true) {
  if (!addr) return undefined;
  const bytes = Number((maxnode + 62n) / 64n) * 8;
  if (maxnode < 1n || bytes > 4096) throw new SyscallError(E.EINVAL);
  const out = p.mem.slice(addr, bytes);
  return clear ? out.fill(0) : out;
}

/** File mappings and their write-back. */
export const mmModule: SyscallModule = {
  name: "mm",
  partial: {
    pkey_alloc: "no protection keys, as on a CPU without PKU: EINVAL",
    pkey_free: "no protection keys, as on a CPU without PKU: EINVAL",
    get_mempolicy: "one memory node (0); the policy set_mempolicy recorded",
    set_mempolicy: "recorded for get_mempolicy; with one memory node it changes nothing",
    mmap:
      "copies; MAP_SHARED's changed bytes (within the file's size) reach it on msync, munmap and exit; writes to the file aren't seen",
  },
  handlers: {
    // No protection keys: the guest runs without CR4.PKE, as Linux does on a
    // CPU without PKU, and answers EINVAL likewise.
    pkey_alloc: () => -E.EINVAL,
    pkey_free: () => -E.EINVAL,
    // libnuma asks at start-up (ps does): one memory node, 0.
    get_mempolicy({ args: [mode, nodemask, maxnode, , flags], process: p }) {
      const NODE = 1n, ADDR = 2n, MEMS_ALLOWED = 4n;
      if (flags & ~7n || (flags & MEMS_ALLOWED && flags & (NODE | ADDR))) {
        throw new SyscallError(E.EINVAL);
      }
      const policy = Number(p.state.get(MEMPOLICY) ?? 0);
      const out = nodeMask(p, nodemask, maxnode);
      if (mode) p.mem.view.setInt32(p.mem.check(mode, 4), flags ? 0 : policy, true);
      // MPOL_DEFAULT (0) and MPOL_LOCAL (4) name no nodes; the other policies node 0.
      const named = (policy & 0xff) !== 0 && (policy & 0xff) !== 4;
      if (out?.length && (flags & MEMS_ALLOWED || (!flags && named))) out[0] = 1;
      return 0;
    },
    set_mempolicy({ args: [mode, nodemask, maxnode], process: p }) {
      const m = Number(BigInt.asIntN(32, mode)), FLAGS = 0xe000;
      if (m & ~FLAGS & ~0xff || (m & 0xff) > 6) throw new SyscallError(E.EINVAL);
      nodeMask(p, nodemask, maxnode, false);
      p.state.set(MEMPOLICY, m);
      return 0;
    },
    // Called by the guest kernel for file mappings only, with the range reserved.
    mmap({ args: [addr, len, prot, flags, fd, off], process: p }) {
      const file = p.fds.get(fd);
      const start = p.mem.check(addr, len), n = Number(len), offset = Number(off);
      const fl = Number(hostSyscall(NR.fcntl, file.hostFd, F_GETFL)), mode = fl & O_ACCMODE;
      const shared = (Number(flags) & MAP_TYPE) === MAP_SHARED;
      if (mode === O_WRONLY) throw new SyscallError(E.EACCES);
      if (shared && Number(prot) & PROT_WRITE && mode !== O_RDWR) throw new SyscallError(E.EACCES);
      // The 2 MiB page where a library's RELRO starts (src/loader/relro.ts) is
      // split into 4 KiB pages when ld.so protects it, and holds little: no
      // host huge page there, which would only cost 2 MiB of clearing.
      const relro = shared ? undefined : relroChunk(p.mem, Number(fd), start, n);
      if (relro !== undefined) p.mem.noHugePages(relro, 0x200000);
      let done = 0;
      while (done < n) {
        const r = hostSyscall(
          NR.pread64,
          file.hostFd,
          p.mem.hostAddress(start + done, n - done),
          n - done,
          offset + done,
        );
        if (r < 0n) {
          if (r === BigInt(-E.EINTR)) continue;
          return r === BigInt(-E.EISDIR) ? -19 : r; // ENODEV, as Linux for directories
        }
        if (r === 0n) break;
        done += Number(r);
      }
      p.mem.bytes.fill(0, start + done, start + n);
      // Whole pages past the end of the file: SIGBUS when touched, as on Linux.
      const eof = start + Math.ceil(done / 4096) * 4096;
      if (eof < start + n) {
        (p.state.get(PAST_END_HOOK) as PastEndHook | undefined)?.(eof, start + n);
      }
      if (Number(prot) & PROT_EXEC && !shared) {
        (p.state.get(EXEC_HOOK) as ExecMappingHook | undefined)?.(file.hostFd, offset, start, done);
      }
      recordFile(p, { start, end: start + n, offset, path: file.path });
      // Only a file open for writing can take a write-back (and only then
      // can mprotect make the mapping writable): its bytes are kept to tell
      // what the program changed.
      if (shared && mode === O_RDWR) {
        const dup = writeBackFd(file.hostFd, fl);
        if (dup < 0) return dup;
        const base = p.mem.bytes.slice(start, start + done);
        sharedOf(p).push({ start, end: start + n, hostFd: dup, offset, base });
      }
      return start;
    },
    // Called by the guest kernel when a shared file mapping goes away.
    munmap({ args: [addr, len], process: p }) {
      const lo = Number(addr), hi = lo + Number(len);
      writeBack(p, lo, hi);
      const all = sharedOf(p), keep: Shared[] = [];
      for (const m of all) {
        if (m.end <= lo || m.start >= hi) keep.push(m);
        else {
          if (m.start < lo) {
            keep.push({
              ...m,
              end: lo,
              hostFd: Number(hostSyscall(NR.dup, m.hostFd)),
              base: m.base.slice(0, lo - m.start),
            });
          }
          if (m.end > hi) {
            keep.push({
              ...m,
              start: hi,
              offset: m.offset + hi - m.start,
              hostFd: Number(hostSyscall(NR.dup, m.hostFd)),
              base: m.base.slice(hi - m.start),
            });
          }
          hostSyscall(NR.close, m.hostFd);
        }
      }
      all.splice(0, all.length, ...keep);
      return 0;
    },
    msync({ args: [addr, len, flags], process: p }) {
      const f = Number(flags);
      if (
        Number(addr) % PAGE || f & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC) ||
        (f & MS_ASYNC && f & MS_SYNC)
      ) {
        throw new SyscallError(E.EINVAL);
      }
      const lo = Number(addr);
      writeBack(p, lo, lo + Math.ceil(Number(len) / PAGE) * PAGE);
      return 0;
    },
  },
};
