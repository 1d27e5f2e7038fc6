/**
 * File mappings. The guest kernel reserves the address range and asks the
 * host to fill it: the file's bytes are copied into guest memory (the rest
 * of the last page reads as zero). A MAP_SHARED mapping is remembered and
 * written back to its file on msync, on munmap (the guest kernel reports
 * it) and when the process ends, so writes reach the file as on Linux at
 * those points.
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { relroChunk } from "../loader/relro.ts";
import { hostSyscall } from "./host.ts";
import type { Process, SyscallModule } from "./registry.ts";

const PAGE = 4096;
const PROT_WRITE = 2, PROT_EXEC = 4, MAP_SHARED = 1, MAP_TYPE = 0xf;
const MS_ASYNC = 1, MS_INVALIDATE = 2, MS_SYNC = 4;
const NR = { pread64: 17, pwrite64: 18, dup: 32, close: 3, fcntl: 72 } as const;
const F_GETFL = 3, O_ACCMODE = 3, O_WRONLY = 1, O_RDWR = 2;

/** A MAP_SHARED file mapping the host writes back. */
interface Shared {
  start: number;
  end: number;
  /** A host fd of its own, so closing the guest's fd does not end it. */
  hostFd: number;
  offset: number;
}

function sharedOf(p: Process): Shared[] {
  let s = p.state.get("sharedMappings") as Shared[] | undefined;
  if (!s) p.state.set("sharedMappings", s = []);
  return s;
}

/** Writes [lo, hi) of every shared mapping back to its file. */
function writeBack(p: Process, lo: number, hi: number): void {
  for (const m of sharedOf(p)) {
    const s = Math.max(lo, m.start), e = Math.min(hi, m.end);
    if (s >= e) continue;
    hostSyscall(NR.pwrite64, m.hostFd, p.mem.hostAddress(s, e - s), e - s, m.offset + s - m.start);
  }
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

/** File mappings and their write-back. */
export const mmModule: SyscallModule = {
  name: "mm",
  partial: {
    pkey_alloc: "no protection keys, as on a CPU without PKU: EINVAL",
    pkey_free: "no protection keys, as on a CPU without PKU: EINVAL",
    mmap:
      "file mappings are copies; MAP_SHARED writes reach the file on msync, munmap and exit, and other processes' writes are not seen",
  },
  handlers: {
    // No protection keys: the guest runs without CR4.PKE, as Linux does on a
    // CPU without PKU, and answers EINVAL likewise.
    pkey_alloc: () => -E.EINVAL,
    pkey_free: () => -E.EINVAL,
    // Called by the guest kernel for file mappings only, with the range reserved.
    mmap({ args: [addr, len, prot, flags, fd, off], process: p }) {
      const file = p.fds.get(fd);
      const start = p.mem.check(addr, len), n = Number(len), offset = Number(off);
      const mode = Number(hostSyscall(NR.fcntl, file.hostFd, F_GETFL)) & O_ACCMODE;
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
      if (shared) {
        const dup = Number(hostSyscall(NR.dup, file.hostFd));
        if (dup < 0) return dup;
        sharedOf(p).push({ start, end: start + n, hostFd: dup, offset });
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
            keep.push({ ...m, end: lo, hostFd: Number(hostSyscall(NR.dup, m.hostFd)) });
          }
          if (m.end > hi) {
            keep.push({
              ...m,
              start: hi,
              offset: m.offset + hi - m.start,
              hostFd: Number(hostSyscall(NR.dup, m.hostFd)),
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
