/**
 * Places an executable's PT_LOAD segments in guest memory, and its
 * interpreter (the dynamic loader) when it names one, as Linux's
 * `load_elf_binary` does.
 * @module
 */
import { ABI } from "../kernel/abi.ts";
import { ElfError, type ElfFile, PT_GNU_RELRO, PT_LOAD, PT_PHDR } from "./elf.ts";
import type { GuestMemory } from "../vm/memory.ts";

/** Where a PIE executable that has an interpreter is placed. */
export const PIE_BASE = 0x400000;

/** Big pages of the host-built page tables: the granule for placing images. */
const HUGE = 0x200000;
const MIB = 1024 * 1024;

/** One ELF object placed in guest memory. */
export interface PlacedObject {
  /** Load bias added to every link address (0 for ET_EXEC). */
  base: number;
  /** Entry point in guest memory. */
  entry: number;
  /** Lowest and (page-aligned) highest guest address the object occupies. */
  start: number;
  /** End of the object, page aligned. */
  end: number;
}

/** The result of loading: what the stack and the boot info need. */
export interface LoadedImage extends PlacedObject {
  /** Guest address of the program headers (AT_PHDR). */
  phdr: number;
  /** Page-aligned end of the image: the initial program break. */
  brkStart: number;
}

/**
 * Where an ET_DYN object without an interpreter goes: a static-pie program
 * or a dynamic loader run directly. It stays clear of the low addresses a
 * non-PIE program is linked at, which such a loader may map next (Linux, too,
 * places these away from ELF_ET_DYN_BASE's usual neighbours).
 */
export function loaderBase(memSize: number): number {
  return Math.max(PIE_BASE, Math.floor(memSize / 4 / HUGE) * HUGE);
}

function copySegments(elf: ElfFile, bytes: Uint8Array, mem: GuestMemory, base: number): number {
  let phdr = 0;
  for (const s of elf.segments) {
    if (s.type === PT_PHDR) phdr = base + s.vaddr;
    if (s.type !== PT_LOAD) continue;
    mem.bytes.set(bytes.subarray(s.offset, s.offset + s.filesz), base + s.vaddr);
    if (!phdr && s.offset <= elf.phoff && elf.phoff < s.offset + s.filesz) {
      phdr = base + s.vaddr + (elf.phoff - s.offset);
    }
  }
  return phdr;
}

/**
 * Throws when [start, end) is not user memory below `limit`, naming the
 * --mem it would need: the rest of RAM above `limit` (the stack, the page
 * tables and per-vCPU pages) is fixed.
 */
function checkFits(elf: ElfFile, start: number, end: number, limit: number, size: number): void {
  if (start < ABI.USER_MIN) {
    throw new ElfError(
      `${elf.path}: segments at 0x${start.toString(16)} lie below user memory ` +
        `(0x${ABI.USER_MIN.toString(16)})`,
    );
  }
  if (end > limit) {
    const need = Math.ceil((end + size - limit) / HUGE) * HUGE;
    throw new ElfError(
      `${elf.path}: does not fit in --mem ${size / MIB} MiB: it needs at least ${need / MIB} MiB`,
    );
  }
}

/** Copies `elf`'s segments into `mem` and returns where things landed. */
export function loadExecutable(
  elf: ElfFile,
  bytes: Uint8Array,
  mem: GuestMemory,
  limit: number,
): LoadedImage {
  let base = 0;
  if (elf.isPie && elf.loadRange.start < ABI.USER_MIN) {
    base = elf.interpreter === undefined ? loaderBase(mem.size) : PIE_BASE;
  }
  const start = base + elf.loadRange.start, end = base + elf.loadRange.end;
  checkFits(elf, start, end, limit, mem.size);
  const phdr = copySegments(elf, bytes, mem, base);
  return { base, entry: base + elf.entry, phdr, start, end, brkStart: end };
}

/**
 * Places the interpreter as high as it fits below `top`, aligned as its
 * segments ask; the mmap area then continues below it, as on Linux.
 */
export function loadInterpreter(
  elf: ElfFile,
  bytes: Uint8Array,
  mem: GuestMemory,
  floor: number,
  top: number,
): PlacedObject {
  if (!elf.isPie) {
    throw new ElfError(`${elf.path}: an interpreter must be position-independent (ET_DYN)`);
  }
  if (elf.interpreter !== undefined) {
    throw new ElfError(`${elf.path}: an interpreter cannot itself name an interpreter`);
  }
  const align = Math.max(
    ABI.PAGE_SIZE,
    ...elf.segments.filter((s) => s.type === PT_LOAD).map((s) => s.align),
  );
  let base = Math.floor((top - elf.loadRange.end) / align) * align;
  // RELRO at the start of a 2 MiB page that holds nothing else below the
  // top, so that ld.so's mprotect of it leaves its text in a whole 2 MiB
  // page (src/loader/relro.ts says why).
  const relro = elf.segments.find((s) => s.type === PT_GNU_RELRO);
  if (relro) {
    const at = Math.floor(relro.vaddr / ABI.PAGE_SIZE) * ABI.PAGE_SIZE;
    const chunk = Math.floor((top - HUGE) / HUGE) * HUGE;
    const aligned = chunk - at;
    if (aligned % align === 0 && aligned + elf.loadRange.end <= top) {
      base = aligned;
      mem.noHugePages(chunk, HUGE); // split by ld.so's mprotect: see relro.ts
    }
  }
  const start = base + elf.loadRange.start, end = base + elf.loadRange.end;
  checkFits(elf, start, end, top, mem.size);
  if (start < floor) {
    throw new ElfError(
      `${elf.path}: the interpreter does not fit guest memory; try a larger --mem`,
    );
  }
  copySegments(elf, bytes, mem, base);
  return { base, entry: base + elf.entry, start, end };
}
