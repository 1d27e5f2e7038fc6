/**
 * Places an executable's PT_LOAD segments in guest memory. Static and
 * static-pie executables for now; a dynamic one is refused by name.
 * @module
 */
import { ABI } from "../kernel/abi.ts";
import { ElfError, type ElfFile, PT_LOAD, PT_PHDR } from "./elf.ts";
import type { GuestMemory } from "../vm/memory.ts";

/** Where a static-pie executable is placed (Linux uses a random high base). */
export const PIE_BASE = 0x400000;

/** The result of loading: what the stack and the boot info need. */
export interface LoadedImage {
  /** Load bias added to every link address (0 for ET_EXEC). */
  base: number;
  /** Entry point in guest memory. */
  entry: number;
  /** Guest address of the program headers (AT_PHDR). */
  phdr: number;
  /** Page-aligned end of the image: the initial program break. */
  brkStart: number;
}

/** Copies `elf`'s segments into `mem` and returns where things landed. */
export function loadExecutable(
  elf: ElfFile,
  bytes: Uint8Array,
  mem: GuestMemory,
  limit: number,
): LoadedImage {
  if (elf.interpreter !== undefined) {
    throw new ElfError(
      `${elf.path}: dynamic executables are not yet supported (interpreter ${elf.interpreter})`,
    );
  }
  const base = elf.isPie && elf.loadRange.start < ABI.USER_MIN ? PIE_BASE : 0;
  const start = base + elf.loadRange.start, end = base + elf.loadRange.end;
  if (start < ABI.USER_MIN || end > limit) {
    throw new ElfError(
      `${elf.path}: segments at 0x${start.toString(16)}-0x${end.toString(16)} do not fit ` +
        `guest memory (0x${ABI.USER_MIN.toString(16)}-0x${limit.toString(16)}); try a larger --mem`,
    );
  }
  let phdr = 0;
  for (const s of elf.segments) {
    if (s.type === PT_PHDR) phdr = base + s.vaddr;
    if (s.type !== PT_LOAD) continue;
    mem.bytes.set(bytes.subarray(s.offset, s.offset + s.filesz), base + s.vaddr);
    if (!phdr && s.offset <= elf.phoff && elf.phoff < s.offset + s.filesz) {
      phdr = base + s.vaddr + (elf.phoff - s.offset);
    }
  }
  return { base, entry: base + elf.entry, phdr, brkStart: end };
}
