/**
 * Binary analysis: which system calls a Linux x86-64 program (with its
 * interpreter and libraries) can make, found by disassembling it with
 * iced-x86 and resolving each `syscall` instruction's number by backward
 * data flow. `hermitux analyze BIN [--json]` prints it.
 *
 * ```ts ignore
 * import { analyzeBinary } from "./mod.ts";
 * const a = analyzeBinary("/bin/true");
 * console.log(a.names, a.unresolved.length);
 * ```
 * @module
 */
export {
  type Analysis,
  ANALYSIS_VERSION,
  analyzeBinary,
  type AnalyzeOptions,
  type CodeLocation,
  codeObject,
  codeRanges,
  type LegacySite,
  type ObjectSummary,
  type SyscallSite,
  type SyscallUse,
  type UnresolvedSite,
  type WrapperFunction,
} from "./analyze.ts";
export {
  type CodeObject,
  type Place,
  Resolver,
  type SiteResult,
  type Stuck,
  type Wrapper,
} from "./dataflow.ts";
export {
  type CodeRange,
  Disassembly,
  type Effect,
  family,
  Kind,
  type Op,
  REG_NAMES,
} from "./disasm.ts";
export { formatAnalysis } from "./format.ts";
// Types the API above refers to, so that this module documents on its own.
export type { ElfFile, ElfSegment, ElfSymbol } from "../loader/elf.ts";
export type { ElfDynamic, ElfSymbolEntry, ElfSymbolReloc } from "../loader/sections.ts";
export type { Mount, MountSpec, MountTable, Resolved } from "../vfs/mounts.ts";
export {
  DEFAULT_LIBRARY_DIRS,
  findObjects,
  type FindOptions,
  type MissingObject,
  type ObjectFile,
  type ObjectSet,
} from "./objects.ts";
