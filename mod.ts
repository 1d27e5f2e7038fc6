/**
 * hermitux: run unmodified Linux x86-64 executables in a KVM micro-VM.
 *
 * ```ts
 * import { boot } from "@hermitux/core";
 * const result = await boot({ path: "/bin/busybox", args: ["echo", "hi"] });
 * console.log(result.status, result.stats.bootMs);
 * ```
 *
 * Override one syscall:
 * ```ts
 * import { boot, defaultRegistry } from "@hermitux/core";
 * const registry = defaultRegistry().override("getpid", () => 42);
 * await boot({ path: "./prog", registry });
 * ```
 * @module
 */
export {
  boot,
  type BootOptions,
  type ProcessStats,
  type RunResult,
  type RunStats,
  Vm,
} from "./src/vm/vm.ts";
export type { CrashReport } from "./src/vm/fault.ts";
export { formatCrash, SIGNAL_NAMES } from "./src/vm/fault.ts";
export { GuestMemory, keepSpareMemory, spareMemoryReady } from "./src/vm/memory.ts";
export { dropSpareMemory } from "./src/vm/machine.ts";
export { type Overlay, Overlays } from "./src/vm/shared.ts";
export { type FaultOutcome, type HighAccess, HighMemory, type PoolSpec } from "./src/vm/high.ts";
export {
  DEFAULT_MODULES,
  defaultRegistry,
  dispatch,
  E,
  ERRNO_NAMES,
  formatSyscall,
  type Process,
  processModule,
  stdioModule,
  SYSCALL_NAMES,
  SYSCALL_NUMBERS,
  type SyscallCall,
  SyscallError,
  type SyscallHandler,
  type SyscallModule,
  syscallName,
  SyscallRegistry,
} from "./src/syscalls/mod.ts";
export { FdTable, type FileOps, type GuestIovec, OpenFile } from "./src/syscalls/fdtable.ts";
export {
  MEMORY,
  type MemoryFile,
  type Mount,
  type MountSpec,
  MountTable,
  type Resolved,
} from "./src/vfs/mounts.ts";
export {
  ElfError,
  type ElfFile,
  type ElfSegment,
  type ElfSymbol,
  parseElf,
} from "./src/loader/elf.ts";
export { KvmUnavailableError } from "./src/kvm/ioctls.ts";
export { GrantError, type NetGrant } from "./src/net/policy.ts";
export { detectPlatform, guestCpl, type Platform } from "./src/kvm/platform.ts";
export { defaultHostCalls, type HostCalls, hostCallsReason } from "./src/vm/exitless.ts";
export {
  CHEAP_EXIT_US,
  COSTLY_TRAP_US,
  type HostKey,
  type HostMeasurement,
  type HostProfile,
  hostProfile,
  measureHost,
} from "./src/vm/hostprobe.ts";
export { VERSION } from "./src/version.ts";
export type { StdioInput, StdioOutput } from "./src/vm/stdio.ts";
export { FORWARDED, HostSignals, type SignalSource } from "./src/vm/hostsignals.ts";
export {
  DEFAULT_HZ,
  flameGraph,
  type FlameGraphOptions,
  Profile,
  type ProfileOptions,
} from "./src/profile/mod.ts";
export { supportMarkdown, type SupportRow, supportTable } from "./src/syscalls/support.ts";
export {
  type Analysis,
  ANALYSIS_VERSION,
  analyzeBinary,
  type AnalyzeOptions,
  type CodeLocation,
  type FindOptions,
  formatAnalysis,
  type LegacySite,
  type ObjectSummary,
  type SyscallSite,
  type SyscallUse,
  type UnresolvedSite,
  type WrapperFunction,
} from "./src/analysis/mod.ts";
