/**
 * The program a VM boots: its file (mapped, with Linux's wording when it
 * cannot be), a `#!` script's interpreter, the ELF interpreter read through
 * the guest's mounts, and /proc/self/maps of what was placed.
 * @module
 */
import { ABI, REGION } from "../kernel/abi.ts";
import { strerror } from "../kvm/libc.ts";
import { mapFile, MapFileError } from "../loader/mapfile.ts";
import { ElfError, type ElfFile, parseElf, PF_R, PF_W, PF_X, PT_LOAD } from "../loader/elf.ts";
import { E, SyscallError } from "../syscalls/errno.ts";
import type { FileMapping } from "../syscalls/mm.ts";
import { hostFstat, hostSyscall } from "../syscalls/host.ts";
import { type MountTable, openBeneath } from "../vfs/mounts.ts";
import { normalize } from "../vfs/path.ts";
import type { GuestMemory } from "./memory.ts";
import type { BootOptions } from "./options.ts";

const NR_CLOSE = 3;

/** A failure to read the program, worded as a shell words it. */
function programError(path: string, errno: number): Error {
  const why = { 2: "no such file", 13: "permission denied", 21: "is a directory" }[errno];
  return new Error(`hermitux: ${path}: ${why ?? strerror(errno).toLowerCase()}`);
}

/** The executable's bytes (mapped) from the host; errors as a shell words them. */
export function readProgram(path: string): Uint8Array {
  try {
    return mapFile(path);
  } catch (e) {
    if (!(e instanceof MapFileError)) throw e;
    throw programError(path, e.errno);
  }
}

/**
 * The bytes of the program a run boots (or a `#!` script's interpreter),
 * found as execve finds a program: an absolute path that a mount holds is
 * the guest's file, read through the mounts (below the mount's root, no
 * host symlink followed), so `--mount /tmp/m:/opt/x /opt/x/prog` runs
 * /tmp/m/prog; any other path is the host's (a program the guest need not
 * see, as before). Errors as {@linkcode readProgram}'s.
 */
export function readBootProgram(path: string, mounts: MountTable): Uint8Array {
  if (!path.startsWith("/") || !mounts.mountFor(normalize(path))) return readProgram(path);
  let fd = -1;
  try {
    const r = mounts.resolve(path, "/");
    if (!r.mount) throw new SyscallError(E.EISDIR); // a directory that only leads to mounts
    fd = openBeneath(r.mount.rootFd, r.rel, 0o2004000); // O_RDONLY | O_NONBLOCK (a FIFO) | O_CLOEXEC
    return mapFile(`/proc/self/fd/${fd}`);
  } catch (e) {
    if (e instanceof SyscallError || e instanceof MapFileError) throw programError(path, e.errno);
    throw e;
  } finally {
    if (fd >= 0) hostSyscall(NR_CLOSE, fd);
  }
}

const hex = (n: number, w = 8) => n.toString(16).padStart(w, "0");
const perms = (prot: number, shared: boolean) =>
  `${prot & 1 ? "r" : "-"}${prot & 2 ? "w" : "-"}${prot & 4 ? "x" : "-"}${shared ? "s" : "p"}`;

/**
 * A script (`#!interpreter [arg]`), run as Linux's binfmt_script does: the
 * interpreter, its one optional argument, the script's path (as given when
 * it holds a slash), then the script's own arguments.
 */
export function shebang(options: BootOptions, bytes: Uint8Array): BootOptions {
  let end = bytes.indexOf(0x0a);
  if (end < 0) end = Math.min(bytes.length, 256);
  const line = new TextDecoder("latin1").decode(bytes.subarray(2, end)).trim();
  const m = /^(\S+)(?:[ \t]+(.*))?$/.exec(line);
  if (!m) throw new ElfError(`${options.path}: #! names no interpreter`);
  const script = options.argv0?.includes("/") ? options.argv0 : options.path;
  return {
    ...options,
    path: m[1],
    argv0: m[1],
    args: [...(m[2] ? [m[2].trim()] : []), script, ...(options.args ?? [])],
  };
}

/** An ELF object the host placed: the executable or its interpreter. */
export interface MappedObject {
  elf: ElfFile;
  base: number;
  /** The file's bytes, for syscall rewriting (rewrite.ts). */
  bytes?: Uint8Array;
  /** Its guest path, for /proc/self/maps. */
  path: string;
}

/**
 * Reads the interpreter an executable names through the guest's mounts, as
 * the guest would see it; Linux's wording when it is missing.
 */
export function readInterpreter(
  mounts: MountTable,
  path: string,
  cwd: string,
  exe: string,
): { elf: ElfFile; bytes: Uint8Array; guestPath: string } {
  try {
    return readGuestElf(mounts, path, cwd);
  } catch (e) {
    if (!(e instanceof SyscallError)) throw e;
    const why = e.errno === E.ENOENT
      ? "no such file in the guest's mounts"
      : strerror(e.errno).toLowerCase();
    throw new Error(`hermitux: ${exe}: cannot load interpreter ${path}: ${why}`);
  }
}

/**
 * An ELF file read as the guest sees it, through the mounts (below a
 * mount's root, no symlink followed on the host). Throws SyscallError
 * when the guest could not open it, ElfError when it is no ELF file.
 */
export function readGuestElf(
  mounts: MountTable,
  path: string,
  cwd: string,
): { elf: ElfFile; bytes: Uint8Array; guestPath: string } {
  let fd = -1;
  try {
    const r = mounts.resolve(path, cwd);
    if (!r.mount) throw new SyscallError(E.EISDIR);
    fd = openBeneath(r.mount.rootFd, r.rel, 0o2004000); // O_RDONLY | O_NONBLOCK (a FIFO) | O_CLOEXEC
    const bytes = mapFile(`/proc/self/fd/${fd}`);
    return { elf: parseElf(bytes, path), bytes, guestPath: r.guest };
  } catch (e) {
    // A directory, device or FIFO: execve's errno, not a host exception (or a read without end).
    if (e instanceof MapFileError) throw new SyscallError(e.errno);
    throw e;
  } finally {
    if (fd >= 0) hostSyscall(NR_CLOSE, fd);
  }
}

/**
 * An executable as execve(2) finds it: through the guest's mounts (below a
 * mount's root, no host symlink followed), mapped. Errors are execve's:
 * ENOENT, EACCES for a directory, a file that is not regular or has no
 * execute bit, ENOEXEC is left to the caller (it parses the bytes).
 */
export function readExecutable(
  mounts: MountTable,
  path: string,
  cwd: string,
): { bytes: Uint8Array; guestPath: string } {
  const r = mounts.resolve(path, cwd);
  if (!r.mount) throw new SyscallError(E.EACCES); // a directory that only leads to mounts
  const fd = openBeneath(r.mount.rootFd, r.rel, 0o10000000); // O_PATH: no read access needed yet
  try {
    const st = hostFstat(fd);
    if (typeof st === "number") throw new SyscallError(-st);
    if ((st.mode & 0o170000) !== 0o100000 || !(st.mode & 0o111)) throw new SyscallError(E.EACCES);
    try {
      return { bytes: mapFile(`/proc/self/fd/${fd}`), guestPath: r.guest };
    } catch (e) {
      if (e instanceof MapFileError) throw new SyscallError(e.errno);
      throw e;
    }
  } finally {
    hostSyscall(NR_CLOSE, fd);
  }
}

/** One entry of the guest kernel's mapping list: its range and where it is in guest memory. */
export interface GuestRegion {
  start: number;
  end: number;
  /** Guest-physical address of its `struct region`. */
  at: number;
}

/**
 * The guest kernel's mapping list (mm.c's `regions`), read from guest
 * memory; the space it keeps free above a library's data (holes) is not a
 * mapping and is left out.
 */
export function* guestRegions(
  mem: GuestMemory,
  mm: { regions: number; nregions: number },
): Generator<GuestRegion> {
  const v = mem.view, n = Math.min(v.getInt32(mm.nregions, true), 4096);
  for (let i = 0; i < n; i++) {
    const at = mm.regions + i * REGION.size;
    if (v.getUint8(at + REGION.hole)) continue;
    const start = Number(v.getBigUint64(at + REGION.start, true));
    yield { start, end: Number(v.getBigUint64(at + REGION.end, true)), at };
  }
}

/**
 * The mapping of the guest kernel's list that holds `addr` (not a hole),
 * found by binary search: the list is sorted by start and disjoint.
 */
export function guestRegionAt(
  mem: GuestMemory,
  mm: { regions: number; nregions: number },
  addr: number,
): GuestRegion | undefined {
  const v = mem.view,
    start = (i: number) =>
      Number(v.getBigUint64(mm.regions + i * REGION.size + REGION.start, true));
  let lo = 0, hi = Math.min(v.getInt32(mm.nregions, true), 4096) - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (start(mid) <= addr) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (found < 0) return undefined;
  const at = mm.regions + found * REGION.size;
  const end = Number(v.getBigUint64(at + REGION.end, true));
  return addr < end && !v.getUint8(at + REGION.hole) ? { start: start(found), end, at } : undefined;
}

/** The newest file mapping holding `addr`, if any. */
export function fileAt(files: readonly FileMapping[], addr: number): FileMapping | undefined {
  for (let i = files.length - 1; i >= 0; i--) {
    if (addr >= files[i].start && addr < files[i].end) return files[i];
  }
  return undefined;
}

/**
 * /proc/self/maps from the ELF segments, the guest kernel's lists, the
 * stack and the `special` ranges ([start, end, permissions, name], e.g.
 * the vDSO).
 */
export function procMaps(
  mem: GuestMemory,
  mm: { regions: number; nregions: number; brkStart: number; brkCur: number },
  objects: readonly MappedObject[],
  stackStart: number,
  stackEnd: number,
  files: readonly FileMapping[] = [],
  special: readonly (readonly [number, number, string, string])[] = [],
): string {
  const v = mem.view;
  const lines: [number, string][] = [];
  const line = (lo: number, hi: number, p: string, off: number, path = "") =>
    lines.push([
      lo,
      `${hex(lo)}-${hex(hi)} ${p} ${hex(off)} 00:00 0${path ? " ".repeat(19) + path : ""}`,
    ]);
  for (const { elf, base, path } of objects) {
    for (const s of elf.segments) {
      if (s.type !== PT_LOAD) continue;
      const lo = Math.floor((base + s.vaddr) / ABI.PAGE_SIZE) * ABI.PAGE_SIZE;
      const hi = Math.ceil((base + s.vaddr + s.memsz) / ABI.PAGE_SIZE) * ABI.PAGE_SIZE;
      const prot = (s.flags & PF_R ? 1 : 0) | (s.flags & PF_W ? 2 : 0) |
        (s.flags & PF_X ? 4 : 0);
      line(lo, hi, perms(prot, false), s.offset - (base + s.vaddr - lo), path);
    }
  }
  const brkStart = Number(v.getBigUint64(mm.brkStart, true));
  const brkCur = Math.ceil(Number(v.getBigUint64(mm.brkCur, true)) / ABI.PAGE_SIZE) * ABI.PAGE_SIZE;
  if (brkCur > brkStart) line(brkStart, brkCur, "rw-p", 0, "[heap]");
  for (const { start, end, at } of guestRegions(mem, mm)) {
    const prot = perms(v.getUint8(at + REGION.prot), v.getUint8(at + REGION.shared) !== 0);
    const f = v.getUint8(at + REGION.file) ? fileAt(files, start) : undefined;
    line(start, end, prot, f ? f.offset + start - f.start : 0, f?.path ?? "");
  }
  line(stackStart, stackEnd, "rw-p", 0, "[stack]");
  for (const [lo, hi, p, name] of special) line(lo, hi, p, 0, name);
  return lines.sort((a, b) => a[0] - b[0]).map(([, l]) => l + "\n").join("");
}
