/**
 * The `syscall` instructions of one object, by link-time address: what
 * static syscall rewriting (`run --rewrite=static`) patches before boot.
 * @module
 */
import type { ElfFile } from "../loader/elf.ts";
import { codeRanges } from "./analyze.ts";
import { Disassembly, Kind } from "./disasm.ts";

/** Link-time addresses of every `syscall` instruction in `elf`'s code (linear sweep). */
export function syscallSites(bytes: Uint8Array, elf: ElfFile): number[] {
  const d = new Disassembly(codeRanges(bytes, elf));
  return d.sites.filter((i) => d.kinds[i] === Kind.SYSCALL).map((i) => d.addrs[i]);
}
