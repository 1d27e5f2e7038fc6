/**
 * `analyzeBinary`: which system calls a program can make. The executable,
 * its interpreter and its libraries are disassembled, every `syscall`
 * instruction is found, and its number is resolved by backward data flow
 * (see `dataflow.ts`). The result is plain JSON (schema: {@linkcode Analysis}),
 * the input of syscall specialization.
 * @module
 */
import { type ElfFile, PF_X, PT_LOAD, SHT_DYNSYM, SHT_SYMTAB, STT_FUNC } from "../loader/elf.ts";
import { readSections, readSymbolTable, SHF_EXECINSTR, STT_GNU_IFUNC } from "../loader/sections.ts";
import { syscallName } from "../syscalls/table.ts";
import { type CodeRange, Disassembly, Kind } from "./disasm.ts";
import { type CodeObject, Resolver, type SiteResult } from "./dataflow.ts";
import { findObjects, type FindOptions, type ObjectFile } from "./objects.ts";

/** Version of the {@linkcode Analysis} JSON layout. */
export const ANALYSIS_VERSION = 1;

/** A place in the code, for reports. Addresses are hex strings of link-time addresses. */
export interface CodeLocation {
  /** Path of the object. */
  object: string;
  /** Link-time address (relative to the load base for position-independent objects), `0x…`. */
  address: string;
  /** Containing function and offset, e.g. `write+0x12`, or `sub_1234+0x5` without a symbol. */
  symbol: string;
}

/** One `syscall` instruction that can make a given call. */
export interface SyscallSite extends CodeLocation {
  /** Where the number is set when that is elsewhere (through a wrapper such as `syscall()`). */
  origins?: CodeLocation[];
}

/** One system call the program can make. */
export interface SyscallUse {
  /** x86-64 system call number. */
  nr: number;
  /** Its name (`syscall_N` for a number Linux does not define). */
  name: string;
  /** How many `syscall` instructions can make it. */
  sites: number;
  /** Objects holding those instructions or the constants that reach them. */
  objects: string[];
  /** The instructions. */
  locations: SyscallSite[];
}

/** A site whose number the analysis could not (wholly) determine. */
export interface UnresolvedSite extends CodeLocation {
  /** `syscall`, `sysenter` or `int 0x80`. */
  instruction: string;
  /** Numbers it did find on other paths. */
  partial: number[];
  /** Where and why each failed path stopped. */
  reasons: (CodeLocation & { reason: string })[];
}

/** A function whose callers supply the number (e.g. libc's `syscall(long nr, ...)`). */
export interface WrapperFunction extends CodeLocation {
  /** Where the number is at its entry: `rdi`, `rsi`, ... or `stack+N`. */
  argument: string;
  /** Direct calls found (including calls through PLT/GOT of other objects). */
  callers: number;
}

/** A 32-bit entry (`int 0x80`, `sysenter`): numbers are i386 ones, not in `syscalls`. */
export interface LegacySite extends CodeLocation {
  /** `int 0x80` or `sysenter`. */
  instruction: string;
  /** The i386 system call numbers found. */
  numbers: number[];
}

/** What the analysis says about one object. */
export interface ObjectSummary {
  /** Its path. */
  path: string;
  /** `executable`, `interpreter` or `library`. */
  role: string;
  /** The `DT_NEEDED` name it was found under, and by whom. */
  needed?: string;
  /** Path of the object that needed it. */
  neededBy?: string;
  /** Instructions decoded. */
  instructions: number;
  /** `syscall`/`sysenter`/`int 0x80` instructions. */
  sites: number;
  /** Sites whose every path ends in a constant. */
  resolved: number;
  /** Sites with a path that does not. */
  unresolved: number;
  /** Sites whose number only comes from callers, and no caller was found. */
  uncalled: number;
  /** Names of the system calls its sites make, sorted by number. */
  syscalls: string[];
}

/**
 * The result of {@linkcode analyzeBinary}, as printed by `hermitux analyze --json`.
 *
 * Layout (version 1):
 * - `version`: 1; `binary`: the path analysed.
 * - `complete`: true when every site was resolved and every library found; only then is
 *   `numbers` a sound over-approximation of what the program can call.
 * - `numbers` / `names`: the system calls, sorted by number (same order in both): the
 *   allow-list specialization reads (`run --allow-syscalls FILE.json`).
 * - `syscalls`: per call: `nr`, `name`, `sites`, `objects`, `locations`.
 * - `unresolved`: sites not (wholly) resolved, with where and why the search stopped.
 * - `wrappers`: functions whose callers supply the number; `legacy`: 32-bit entries.
 * - `objects`: per object summary; `missing`: libraries not found.
 * - `totals`: counts over all objects.
 */
export interface Analysis {
  /** Layout version ({@linkcode ANALYSIS_VERSION}). */
  version: number;
  /** The executable's path as given. */
  binary: string;
  /** Every site resolved and every object found. */
  complete: boolean;
  /** System call numbers, ascending. */
  numbers: number[];
  /** Their names, in the same order. */
  names: string[];
  /** Per system call, ascending by number. */
  syscalls: SyscallUse[];
  /** Sites not (wholly) resolved. */
  unresolved: UnresolvedSite[];
  /** Functions that pass a caller's argument on as the number. */
  wrappers: WrapperFunction[];
  /** `int 0x80` and `sysenter` sites. */
  legacy: LegacySite[];
  /** The objects analysed, the executable first. */
  objects: ObjectSummary[];
  /** Libraries (or the interpreter) that were named but not found. */
  missing: { name: string; neededBy: string; reason: string }[];
  /** Counts over all objects. */
  totals: {
    objects: number;
    instructions: number;
    sites: number;
    resolved: number;
    unresolved: number;
    uncalled: number;
    syscalls: number;
  };
}

/** Options of {@linkcode analyzeBinary}. */
export type AnalyzeOptions = FindOptions;

const hex = (n: number) => "0x" + n.toString(16);

/** The bytes of the executable sections that lie in executable `PT_LOAD` segments. */
export function codeRanges(bytes: Uint8Array, elf: ElfFile): CodeRange[] {
  const loads = elf.segments.filter((s) => s.type === PT_LOAD && (s.flags & PF_X) !== 0);
  const inLoad = (addr: number, size: number) =>
    loads.some((s) => addr >= s.vaddr && addr + size <= s.vaddr + s.filesz);
  const sections = readSections(bytes).filter((s) =>
    (s.flags & SHF_EXECINSTR) !== 0 && s.type !== 8 /* SHT_NOBITS */ && s.size > 0 &&
    s.offset + s.size <= bytes.length && inLoad(s.addr, s.size)
  );
  if (sections.length > 0) {
    return sections.map((s) => ({
      addr: s.addr,
      bytes: bytes.subarray(s.offset, s.offset + s.size),
    }));
  }
  return loads.map((s) => ({
    addr: s.vaddr,
    bytes: bytes.subarray(s.offset, s.offset + s.filesz),
  }));
}

/** Decoded objects by file identity, so analysing again (or the same libc) is quick. */
const cache = new Map<string, CodeObject>();
const CACHE_SIZE = 16;

/**
 * Disassembles an object and gathers what the data flow needs (cached per
 * file contents within the process).
 *
 * @param obj The object, from {@linkcode findObjects}.
 * @returns Its code, function entries, exports and imports.
 */
export function codeObject(obj: ObjectFile): CodeObject {
  const hit = cache.get(obj.key);
  if (hit) {
    cache.delete(obj.key);
    cache.set(obj.key, hit); // most recently used last
    return { ...hit, name: obj.path };
  }
  const { bytes, elf } = obj;
  const code = new Disassembly(codeRanges(bytes, elf));
  const sections = readSections(bytes);
  const entries = new Set<number>(code.callsTo.keys());
  if (elf.entry !== 0) entries.add(elf.entry);
  const functions: { value: number; name: string }[] = [];
  for (const type of [SHT_SYMTAB, SHT_DYNSYM]) {
    for (const s of readSymbolTable(bytes, sections, type)) {
      if ((s.type === STT_FUNC || s.type === STT_GNU_IFUNC) && s.shndx !== 0 && s.value !== 0) {
        entries.add(s.value);
        functions.push(s);
      }
    }
  }
  const exports = new Map<number, string[]>();
  for (const s of obj.dynamic?.exports ?? []) {
    const list = exports.get(s.value);
    if (list === undefined) exports.set(s.value, [s.name]);
    else if (!list.includes(s.name)) list.push(s.name);
  }
  const imports = new Map<number, string>();
  for (const r of obj.dynamic?.symbolRelocs ?? []) imports.set(r.offset, r.name);
  const sortedEntries = [...entries].sort((a, b) => a - b);
  const symbolize = (addr: number): string => {
    const s = elf.symbolize(addr);
    if (s) return s.offset === 0 ? s.name : `${s.name}+${hex(s.offset)}`;
    let lo = 0;
    let hi = sortedEntries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sortedEntries[mid] <= addr) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) return hex(addr);
    const base = sortedEntries[lo - 1];
    const name = `sub_${base.toString(16)}`;
    return addr === base ? name : `${name}+${hex(addr - base)}`;
  };
  const result: CodeObject = { name: obj.path, code, entries, exports, imports, symbolize };
  cache.set(obj.key, result);
  if (cache.size > CACHE_SIZE) {
    const [oldest, old] = cache.entries().next().value!;
    cache.delete(oldest);
    old.code.free();
  }
  return result;
}

const INSTRUCTION_NAMES: Record<number, string> = {
  [Kind.SYSCALL]: "syscall",
  [Kind.SYSENTER]: "sysenter",
  [Kind.INT80]: "int 0x80",
};

/**
 * Analyses the executable at host path `path`, its interpreter and its
 * libraries.
 *
 * @example Usage
 * ```ts ignore
 * const a = analyzeBinary("/bin/true");
 * console.log(a.names.length, a.unresolved.length);
 * ```
 *
 * @param path Host path of the executable.
 * @param options Where to find libraries (mounts, cwd, library path), or `follow: false`.
 * @returns The analysis (JSON-ready).
 * @throws {ElfError} If the executable is not a valid x86-64 ELF.
 */
export function analyzeBinary(path: string, options: AnalyzeOptions = {}): Analysis {
  const { objects, missing } = findObjects(path, options);
  const code = objects.map(codeObject);
  const results = new Resolver(code).resolveAll();
  return summarize(path, objects, code, results, missing);
}

function summarize(
  path: string,
  objects: ObjectFile[],
  code: CodeObject[],
  results: SiteResult[],
  missing: Analysis["missing"],
): Analysis {
  const loc = (object: number, addr: number): CodeLocation => ({
    object: code[object].name,
    address: hex(addr),
    symbol: code[object].symbolize(addr),
  });
  const uses = new Map<number, SyscallUse>();
  const unresolved: UnresolvedSite[] = [];
  const legacy: LegacySite[] = [];
  const wrappers = new Map<string, WrapperFunction>();
  const perObject = objects.map((o, i) => ({
    path: o.path,
    role: o.role,
    ...(o.needed === undefined ? {} : { needed: o.needed, neededBy: o.neededBy }),
    instructions: code[i].code.length,
    sites: 0,
    resolved: 0,
    unresolved: 0,
    uncalled: 0,
    numbers: new Set<number>(),
  }));
  for (const r of results) {
    const summary = perObject[r.object];
    summary.sites++;
    const numbers = [...r.values.keys()].sort((a, b) => a - b);
    if (r.stuck.length > 0) summary.unresolved++;
    else if (numbers.length > 0) summary.resolved++;
    else summary.uncalled++;
    for (const w of r.wrappers) {
      const key = `${w.object}:${w.addr}`;
      if (!wrappers.has(key)) {
        wrappers.set(key, { ...loc(w.object, w.addr), argument: w.location, callers: w.callers });
      }
    }
    if (r.stuck.length > 0) {
      unresolved.push({
        ...loc(r.object, r.addr),
        instruction: INSTRUCTION_NAMES[r.kind],
        partial: numbers,
        reasons: r.stuck.map((s) => ({ ...loc(s.object, s.addr), reason: s.reason })),
      });
    }
    if (r.kind !== Kind.SYSCALL) {
      legacy.push({ ...loc(r.object, r.addr), instruction: INSTRUCTION_NAMES[r.kind], numbers });
      continue;
    }
    for (const nr of numbers) {
      summary.numbers.add(nr);
      let use = uses.get(nr);
      if (use === undefined) {
        use = { nr, name: syscallName(nr), sites: 0, objects: [], locations: [] };
        uses.set(nr, use);
      }
      use.sites++;
      const site: SyscallSite = loc(r.object, r.addr);
      const names = new Set([site.object]);
      const origins = r.values.get(nr)!.filter((o) =>
        o.object !== r.object ||
        code[r.object].symbolize(o.addr).split("+")[0] !== site.symbol.split("+")[0]
      );
      if (origins.length > 0) site.origins = origins.map((o) => loc(o.object, o.addr));
      for (const o of site.origins ?? []) names.add(o.object);
      for (const n of names) if (!use.objects.includes(n)) use.objects.push(n);
      use.locations.push(site);
    }
  }
  const syscalls = [...uses.values()].sort((a, b) => a.nr - b.nr);
  const totals = {
    objects: objects.length,
    instructions: perObject.reduce((n, o) => n + o.instructions, 0),
    sites: results.length,
    resolved: perObject.reduce((n, o) => n + o.resolved, 0),
    unresolved: unresolved.length,
    uncalled: perObject.reduce((n, o) => n + o.uncalled, 0),
    syscalls: syscalls.length,
  };
  return {
    version: ANALYSIS_VERSION,
    binary: path,
    complete: unresolved.length === 0 && missing.length === 0,
    numbers: syscalls.map((s) => s.nr),
    names: syscalls.map((s) => s.name),
    syscalls,
    unresolved,
    wrappers: [...wrappers.values()],
    legacy,
    objects: perObject.map(({ numbers, ...o }) => ({
      ...o,
      syscalls: [...numbers].sort((a, b) => a - b).map(syscallName),
    })),
    missing,
    totals,
  };
}
