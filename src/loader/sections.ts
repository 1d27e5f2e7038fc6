/**
 * Sections, whole symbol tables and the dynamic section of an ELF file, for
 * binary analysis (src/analysis). None of these are needed to run a
 * program; all are defensive: a malformed table reads as empty.
 * @module
 */
import {
  ElfError,
  type ElfFile,
  PT_DYNAMIC,
  PT_LOAD,
  Reader,
  SHT_DYNSYM,
  STT_FUNC,
} from "./elf.ts";

const SHDR_SIZE = 64;
const SYM_SIZE = 24;
const SHT_STRTAB = 3;

/** Section flag: the section holds executable instructions. */
export const SHF_EXECINSTR = 4;
/** Symbol type: indirect function (its value is a resolver). */
export const STT_GNU_IFUNC = 10;
/** Symbol binding: global. */
export const STB_GLOBAL = 1;
/** Symbol binding: weak. */
export const STB_WEAK = 2;

/** One section header, its name read from the section name table. */
export interface ElfSection {
  /** Name (e.g. `.text`), `""` when the name table is unusable. */
  name: string;
  /** Section type (`SHT_*`). */
  type: number;
  /** Flags (`SHF_*`). */
  flags: number;
  /** Link-time address (0 if not loaded). */
  addr: number;
  /** Offset of its data in the file. */
  offset: number;
  /** Size in bytes. */
  size: number;
  /** Index of a related section (a symbol table's string table). */
  link: number;
  /** Size of one entry, for tables. */
  entsize: number;
}

/** One entry of a symbol table, whatever its type. */
export interface ElfSymbolEntry {
  /** Symbol name (`""` for none). */
  name: string;
  /** Value: an address for defined functions and objects. */
  value: number;
  /** Size in bytes. */
  size: number;
  /** Type (`STT_*`). */
  type: number;
  /** Binding (`STB_*`). */
  bind: number;
  /** Section index; 0 for an undefined (imported) symbol. */
  shndx: number;
}

/** A relocation that names a symbol (an import, usually a GOT slot). */
export interface ElfSymbolReloc {
  /** Address the relocation writes (e.g. the GOT slot). */
  offset: number;
  /** Relocation type (`R_X86_64_*`, e.g. 7 for a PLT slot). */
  type: number;
  /** Name of the symbol it refers to. */
  name: string;
}

/** What the dynamic section says about linking. */
export interface ElfDynamic {
  /** `DT_NEEDED` names, in order. */
  needed: string[];
  /** `DT_SONAME`, if any. */
  soname?: string;
  /** `DT_RPATH`, if any (colon-separated directories). */
  rpath?: string;
  /** `DT_RUNPATH`, if any (colon-separated directories). */
  runpath?: string;
  /** Relocations from `DT_RELA` and `DT_JMPREL` that name a symbol. */
  symbolRelocs: ElfSymbolReloc[];
  /** Defined global or weak functions of the dynamic symbol table (exports). */
  exports: ElfSymbolEntry[];
}

const DT_NULL = 0, DT_NEEDED = 1, DT_PLTRELSZ = 2, DT_STRTAB = 5, DT_SYMTAB = 6;
const DT_RELA = 7, DT_RELASZ = 8, DT_STRSZ = 10, DT_SONAME = 14, DT_RPATH = 15;
const DT_JMPREL = 23, DT_RUNPATH = 29, DT_HASH = 4;
const RELA_SIZE = 24;

function quietReader(bytes: Uint8Array): Reader {
  return new Reader(bytes, (reason) => new ElfError(reason));
}

/**
 * Reads the section headers with their names. Returns `[]` when there are
 * none or they are malformed (they are optional in an executable).
 *
 * @param bytes The whole file (already accepted by {@linkcode parseElf}).
 * @returns The sections in file order, index 0 (the null section) included.
 */
export function readSections(bytes: Uint8Array): ElfSection[] {
  try {
    const r = quietReader(bytes);
    const shoff = r.u64(40, "ELF header");
    const shentsize = r.u16(58, "ELF header");
    let count = r.u16(60, "ELF header");
    let shstrndx = r.u16(62, "ELF header");
    if (shoff === 0 || shentsize !== SHDR_SIZE) return [];
    const read = (i: number) => {
      const off = shoff + i * SHDR_SIZE;
      return {
        nameOff: r.u32(off, "section"),
        name: "",
        type: r.u32(off + 4, "section"),
        flags: r.u64(off + 8, "section"),
        addr: r.u64(off + 16, "section"),
        offset: r.u64(off + 24, "section"),
        size: r.u64(off + 32, "section"),
        link: r.u32(off + 40, "section"),
        entsize: r.u64(off + 56, "section"),
      };
    };
    if (count === 0) count = read(0).size;
    if (shstrndx === 0xffff) shstrndx = read(0).link;
    if (!r.has(shoff, count * SHDR_SIZE) || count > 65536) return [];
    const raw = Array.from({ length: count }, (_, i) => read(i));
    const names = raw[shstrndx];
    const table = names && names.type === SHT_STRTAB && r.has(names.offset, names.size)
      ? r.bytes(names.offset, names.size, "section names")
      : undefined;
    return raw.map(({ nameOff, ...s }) => ({ ...s, name: table ? cString(table, nameOff) : "" }));
  } catch (err) {
    if (err instanceof ElfError) return [];
    throw err;
  }
}

function cString(table: Uint8Array, off: number): string {
  if (off >= table.length) return "";
  let end = table.indexOf(0, off);
  if (end < 0) end = table.length;
  return new TextDecoder().decode(table.subarray(off, end));
}

function readSymbolEntries(
  r: Reader,
  offset: number,
  count: number,
  strings: Uint8Array,
): ElfSymbolEntry[] {
  const out: ElfSymbolEntry[] = [];
  for (let i = 0; i < count; i++) {
    const off = offset + i * SYM_SIZE;
    const info = r.u8(off + 4, "symbol");
    out.push({
      name: cString(strings, r.u32(off, "symbol")),
      value: r.u64OrUndefined(off + 8, "symbol") ?? 0,
      size: r.u64OrUndefined(off + 16, "symbol") ?? 0,
      type: info & 0xf,
      bind: info >> 4,
      shndx: r.u16(off + 6, "symbol"),
    });
  }
  return out;
}

/**
 * Reads a whole symbol table section (`.symtab` or `.dynsym`), every entry
 * in index order. Returns `[]` if it is absent or malformed.
 *
 * @param bytes The whole file.
 * @param sections Its sections, from {@linkcode readSections}.
 * @param type `SHT_SYMTAB` (2) or {@linkcode SHT_DYNSYM}.
 * @returns The entries, index 0 included.
 */
export function readSymbolTable(
  bytes: Uint8Array,
  sections: readonly ElfSection[],
  type: number,
): ElfSymbolEntry[] {
  try {
    const r = quietReader(bytes);
    const table = sections.find((s) => s.type === type);
    if (table === undefined || table.entsize !== SYM_SIZE) return [];
    const strtab = sections[table.link];
    if (strtab === undefined || strtab.type !== SHT_STRTAB) return [];
    const strings = r.bytes(strtab.offset, strtab.size, "string table");
    const count = Math.floor(table.size / SYM_SIZE);
    if (!r.has(table.offset, count * SYM_SIZE)) return [];
    return readSymbolEntries(r, table.offset, count, strings);
  } catch (err) {
    if (err instanceof ElfError) return [];
    throw err;
  }
}

/**
 * File offset of link-time address `addr`, through the `PT_LOAD` segments;
 * undefined when no segment holds it in the file.
 *
 * @param elf A parsed file.
 * @param addr A link-time address.
 * @param len How many bytes must be there.
 * @returns The file offset, or undefined.
 */
export function fileOffset(elf: ElfFile, addr: number, len = 1): number | undefined {
  for (const s of elf.segments) {
    if (s.type !== PT_LOAD) continue;
    if (addr >= s.vaddr && addr + len <= s.vaddr + s.filesz) return s.offset + addr - s.vaddr;
  }
  return undefined;
}

/**
 * Reads the dynamic section: needed libraries, search paths, the
 * relocations that name symbols, and the exported functions. Returns
 * undefined for a file without `PT_DYNAMIC`.
 *
 * @example Usage
 * ```ts ignore
 * const bytes = Deno.readFileSync("/bin/ls");
 * console.log(readDynamic(bytes, parseElf(bytes))?.needed); // ["libselinux.so.1", "libc.so.6"]
 * ```
 *
 * @param bytes The whole file.
 * @param elf The same file, parsed.
 * @returns What the dynamic section says, or undefined.
 * @throws {ElfError} If the dynamic section itself is malformed.
 */
export function readDynamic(bytes: Uint8Array, elf: ElfFile): ElfDynamic | undefined {
  const seg = elf.segments.find((s) => s.type === PT_DYNAMIC);
  if (seg === undefined) return undefined;
  const path = elf.path;
  const fail = (reason: string) => new ElfError(path === "" ? reason : `${path}: ${reason}`);
  const r = new Reader(bytes, fail);
  const tags: [number, number][] = [];
  for (let off = seg.offset; off + 16 <= seg.offset + seg.filesz; off += 16) {
    const tag = r.u64OrUndefined(off, "dynamic section");
    if (tag === DT_NULL) break;
    const value = r.u64OrUndefined(off + 8, "dynamic section");
    if (tag !== undefined && value !== undefined) tags.push([tag, value]);
  }
  const one = (tag: number) => tags.find(([t]) => t === tag)?.[1];
  const at = (addr: number | undefined, len: number, what: string) => {
    if (addr === undefined) return undefined;
    const off = fileOffset(elf, addr, len);
    if (off === undefined) throw fail(`${what} at 0x${addr.toString(16)} is outside the file`);
    return off;
  };
  const strsz = one(DT_STRSZ) ?? 0;
  const strOff = at(one(DT_STRTAB), strsz, "DT_STRTAB");
  const strings = strOff === undefined ? new Uint8Array() : r.bytes(strOff, strsz, "DT_STRTAB");
  const str = (value: number | undefined) =>
    value === undefined ? undefined : cString(strings, value);

  const sections = readSections(bytes);
  const dynsymSection = sections.find((s) => s.type === SHT_DYNSYM);
  const relocs: { offset: number; type: number; sym: number }[] = [];
  for (const [addrTag, sizeTag] of [[DT_RELA, DT_RELASZ], [DT_JMPREL, DT_PLTRELSZ]]) {
    const size = one(sizeTag) ?? 0;
    const off = at(one(addrTag), size, addrTag === DT_RELA ? "DT_RELA" : "DT_JMPREL");
    if (off === undefined) continue;
    for (let i = 0; i + RELA_SIZE <= size; i += RELA_SIZE) {
      const offset = r.u64OrUndefined(off + i, "relocation");
      const info = r.u64OrUndefined(off + i + 8, "relocation");
      if (offset === undefined || info === undefined) continue;
      const sym = Math.floor(info / 0x1_0000_0000);
      if (sym !== 0) relocs.push({ offset, type: info % 0x1_0000_0000, sym });
    }
  }
  // The dynamic symbol count: the section's, else DT_HASH's, else enough for the relocations.
  let symCount = dynsymSection ? Math.floor(dynsymSection.size / SYM_SIZE) : 0;
  const hashOff = dynsymSection ? undefined : at(one(DT_HASH), 8, "DT_HASH");
  if (hashOff !== undefined) symCount = r.u32(hashOff + 4, "DT_HASH");
  for (const rel of relocs) symCount = Math.max(symCount, rel.sym + 1);
  const symOff = at(one(DT_SYMTAB), symCount * SYM_SIZE, "DT_SYMTAB");
  const symbols = symOff === undefined ? [] : readSymbolEntries(r, symOff, symCount, strings);

  const needed = tags.filter(([t]) => t === DT_NEEDED).map(([, v]) => cString(strings, v));
  const soname = str(one(DT_SONAME));
  const rpath = str(one(DT_RPATH));
  const runpath = str(one(DT_RUNPATH));
  return {
    needed,
    ...(soname === undefined ? {} : { soname }),
    ...(rpath === undefined ? {} : { rpath }),
    ...(runpath === undefined ? {} : { runpath }),
    symbolRelocs: relocs.flatMap((rel) =>
      symbols[rel.sym] ? [{ offset: rel.offset, type: rel.type, name: symbols[rel.sym].name }] : []
    ),
    exports: symbols.filter((s) =>
      s.shndx !== 0 && s.value !== 0 && (s.type === STT_FUNC || s.type === STT_GNU_IFUNC) &&
      (s.bind === STB_GLOBAL || s.bind === STB_WEAK)
    ),
  };
}
