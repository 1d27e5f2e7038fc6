/**
 * File mappings. The guest kernel reserves the address range and asks the
 * host to fill it. A private mapping gets a copy of the file's bytes (the
 * rest of the last page reads as zero). A MAP_SHARED one is the host's own
 * shared mapping of the file laid over that guest RAM (src/vm/shared.ts):
 * the guest sees the page cache, so write(2) is seen through the mapping
 * at once and what the program writes reaches the file as on Linux,
 * without a copy written back; a child after fork maps the same pages.
 * The file is laid only up to its end: whole pages past it are left out
 * of the guest's page tables (SIGBUS when touched, as on Linux).
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { relroChunk } from "../loader/relro.ts";
import { bufferAddress, hostFstat, hostSyscall } from "./host.ts";
import { OsError } from "../kvm/libc.ts";
import type { Process, SyscallModule } from "./registry.ts";

const PAGE = 4096;
const PROT_WRITE = 2, PROT_EXEC = 4, MAP_SHARED = 1;
const MS_ASYNC = 1, MS_INVALIDATE = 2, MS_SYNC = 4;
const NR = {
  pread64: 17,
  fcntl: 72,
  msync: 26,
  memfd_create: 319,
  ftruncate: 77,
  close: 3,
} as const;
const MFD_CLOEXEC = 1;
const MEMFD_NAME = new TextEncoder().encode("hermitux-dev-zero\0");
const F_GETFL = 3, O_ACCMODE = 3, O_WRONLY = 1, O_RDWR = 2;
const S_IFMT = 0o170000, S_IFREG = 0o100000;
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

/**
 * Lays the MAP_SHARED mapping of `file` (`n` bytes from `offset`) over
 * guest RAM at `start`: shared with the file when it is open for writing,
 * else a private view of it (the host may then write the pages, as a
 * syscall's result, without touching the file). Pages past the file's end
 * stay anonymous and out of the guest's page tables.
 */
function mapShared(
  p: Process,
  hostFd: number,
  start: number,
  n: number,
  offset: number,
  writable: boolean,
  path?: string,
): number {
  const st = hostFstat(hostFd);
  if (typeof st === "number") return st;
  if ((st.mode & S_IFMT) !== S_IFREG) {
    // /dev/zero's shared mapping is shared anonymous memory (a memfd, which
    // a child maps again; a second host mmap of /dev/zero would not be the
    // same pages). Other files that are not regular cannot be mapped.
    if (path !== "/dev/zero") return -E.ENODEV;
    const fd = Number(hostSyscall(NR.memfd_create, bufferAddress(MEMFD_NAME), MFD_CLOEXEC));
    if (fd < 0) return fd;
    try {
      if (hostSyscall(NR.ftruncate, fd, n) < 0n) return -E.ENOMEM;
      return mapShared(p, fd, start, n, 0, true, "");
    } finally {
      hostSyscall(NR.close, fd);
    }
  }
  const len = Math.min(n, Math.max(0, Math.ceil((st.size - offset) / PAGE) * PAGE));
  try {
    p.mem.overlays.add(start, len, hostFd, offset, writable);
  } catch (e) {
    if (e instanceof OsError) return -(e.errno === E.EACCES ? E.EACCES : E.ENODEV);
    throw e;
  }
  if (len < n) {
    p.mem.bytes.fill(0, start + len, start + n);
    (p.state.get(PAST_END_HOOK) as PastEndHook | undefined)?.(start + len, start + n);
  }
  return start;
}

/** File mappings: private ones copied, MAP_SHARED ones the host's own pages. */
export const mmModule: SyscallModule = {
  name: "mm",
  partial: {
    pkey_alloc: "no protection keys, as on a CPU without PKU: EINVAL",
    pkey_free: "no protection keys, as on a CPU without PKU: EINVAL",
    get_mempolicy: "one memory node (0); the policy set_mempolicy recorded",
    set_mempolicy: "recorded for get_mempolicy; with one memory node it changes nothing",
    mmap:
      "MAP_PRIVATE file mappings are copies (later writes to the file are not seen); pages of a MAP_SHARED mapping past a truncation read as zeros, not SIGBUS",
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
      // start: the guest address; at: its place in memory (above RAM, in the pool).
      const at = p.mem.check(addr, len), start = Number(addr), n = Number(len);
      const offset = Number(off);
      const fl = Number(hostSyscall(NR.fcntl, file.hostFd, F_GETFL)), mode = fl & O_ACCMODE;
      const shared = (Number(flags) & MAP_SHARED) !== 0; // MAP_SHARED or MAP_SHARED_VALIDATE
      if (mode === O_WRONLY) throw new SyscallError(E.EACCES);
      if (shared && Number(prot) & PROT_WRITE && mode !== O_RDWR) throw new SyscallError(E.EACCES);
      if (shared) {
        if (at !== start) return -E.ENOMEM; // shared pages are laid over RAM only
        const r = mapShared(p, file.hostFd, start, n, offset, mode === O_RDWR, file.path);
        if (r >= 0) recordFile(p, { start, end: start + n, offset, path: file.path });
        return r;
      }
      // The 2 MiB page where a library's RELRO starts (src/loader/relro.ts) is
      // split into 4 KiB pages when ld.so protects it, and holds little: no
      // host huge page there, which would only cost 2 MiB of clearing.
      const relro = relroChunk(p.mem, Number(fd), start, n);
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
      p.mem.bytes.fill(0, at + done, at + n);
      // Whole pages past the end of the file: SIGBUS when touched, as on Linux.
      const eof = start + Math.ceil(done / 4096) * 4096;
      if (eof < start + n) {
        (p.state.get(PAST_END_HOOK) as PastEndHook | undefined)?.(eof, start + n);
      }
      // Sites above RAM are not rewritten: the rewriter reaches RAM only.
      if (Number(prot) & PROT_EXEC && at === start) {
        (p.state.get(EXEC_HOOK) as ExecMappingHook | undefined)?.(file.hostFd, offset, start, done);
      }
      recordFile(p, { start, end: start + n, offset, path: file.path });
      return start;
    },
    // Called by the guest kernel to move or grow a file's MAP_SHARED
    // mapping: the file is laid at `to` for `newLen` bytes, from where the
    // mapping at `old` started (the guest kernel then unmaps the old place).
    mremap({ args: [old, oldLen, newLen, to], process: p }) {
      const from = p.mem.check(old, oldLen), at = p.mem.check(to, newLen);
      const o = p.mem.overlays.at(from);
      if (!o) return -E.EFAULT;
      const offset = o.offset + from - o.start;
      const path = fileMappings(p).findLast((m) => m.start <= from && from < m.end)?.path;
      const r = mapShared(p, o.fd, at, Number(newLen), offset, o.shared, path);
      if (r >= 0) recordFile(p, { start: at, end: at + Number(newLen), offset, path });
      return r;
    },
    // Called by the guest kernel when a shared mapping (of a file, or
    // anonymous) goes away, before it clears the range.
    munmap({ args: [addr, len], process: p }) {
      const lo = p.mem.check(addr, len);
      p.mem.overlays.remove(lo, lo + Number(len));
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
      // The pages are the file's own: MS_SYNC has the host write them now.
      const lo = Number(addr), hi = lo + Math.ceil(Number(len) / PAGE) * PAGE;
      if (!(f & MS_SYNC)) return 0;
      for (const o of p.mem.overlays.list) {
        const s = Math.max(lo, o.start), e = Math.min(hi, o.end);
        if (s < e && o.shared) hostSyscall(NR.msync, p.mem.host + BigInt(s), e - s, MS_SYNC);
      }
      return 0;
    },
  },
};
