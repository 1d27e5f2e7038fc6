/**
 * The syscall registry: syscall number → handler. Modules (one file per
 * syscall family) register handlers by name; users may add modules or
 * override single handlers. The transport that carried a call (an exit,
 * later an exitless queue) is invisible here.
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { SYSCALL_NUMBERS, syscallName } from "./table.ts";
import { unpinBuffers } from "./host.ts";
import type { GuestMemory } from "../vm/memory.ts";
import type { FdTable } from "./fdtable.ts";
import type { MountTable } from "../vfs/mounts.ts";

/** What a handler may use: the guest's memory and process state. */
export interface Process {
  /** Guest memory; every guest pointer goes through its checks. */
  readonly mem: GuestMemory;
  /** Open file descriptions. */
  readonly fds: FdTable;
  /** The guest's view of the file system. */
  readonly mounts: MountTable;
  /** The working directory, as a guest path. */
  cwd: string;
  /** The guest's pid (as it sees it). */
  readonly pid: number;
  /** argv as the guest received it. */
  readonly argv: readonly string[];
  /** The executable's path as the guest names it (for /proc/self/exe). */
  readonly exePath: string;
  /** The guest's memory map in the format of /proc/self/maps. */
  mappings(): string;
  /** Ends the run with `code` (exit_group) or a fatal signal. */
  exit(code: number, signal?: number): void;
  /** Per-process values owned by modules (e.g. resource limits), by key. */
  readonly state: Map<string, unknown>;
}

/** One syscall as the host sees it. */
export interface SyscallCall {
  /** Syscall number. */
  readonly nr: number;
  /** The six raw argument registers (rdi, rsi, rdx, r10, r8, r9). */
  readonly args: readonly bigint[];
  /** Guest address of the `syscall` instruction. */
  readonly site: number;
  /** The calling process. */
  readonly process: Process;
}

/**
 * A syscall handler. Returns the result (a negative value is `-errno`) or
 * throws {@linkcode SyscallError}.
 */
export type SyscallHandler = (call: SyscallCall) => number | bigint;

/** A family of handlers, keyed by syscall name (e.g. `"write"`). */
export interface SyscallModule {
  /** Module name, for support tables and diagnostics. */
  readonly name: string;
  /** Handlers by syscall name. */
  readonly handlers: Readonly<Record<string, SyscallHandler>>;
  /**
   * What is missing, by syscall name, for handlers that serve only part of
   * their syscall (e.g. `{ readlink: "only /proc/self/exe" }`). A handler
   * with no entry is complete. The support table (docs/SYSCALLS.md) is
   * generated from these notes.
   */
  readonly partial?: Readonly<Record<string, string>>;
}

function numberOf(nameOrNr: string | number): number {
  const nr = typeof nameOrNr === "number" ? nameOrNr : SYSCALL_NUMBERS.get(nameOrNr);
  if (nr === undefined) throw new Error(`unknown syscall ${nameOrNr}`);
  return nr;
}

/** Syscall number → handler, with the module that provides it. */
export class SyscallRegistry {
  #handlers = new Map<number, { handler: SyscallHandler; module: string }>();
  #overridden = new Set<number>();

  /** Adds every handler of `module`, replacing earlier ones. */
  register(module: SyscallModule): this {
    for (const [name, handler] of Object.entries(module.handlers)) {
      this.#handlers.set(numberOf(name), { handler, module: module.name });
    }
    return this;
  }

  /**
   * Replaces (or adds) the handler of one syscall. Syscalls the guest kernel
   * serves by itself are then sent to the host, so the override always runs.
   */
  override(nameOrNr: string | number, handler: SyscallHandler, module = "override"): this {
    const nr = numberOf(nameOrNr);
    this.#handlers.set(nr, { handler, module });
    this.#overridden.add(nr);
    return this;
  }

  /** The handler for `nr`, if any. */
  handler(nr: number): SyscallHandler | undefined {
    return this.#handlers.get(nr)?.handler;
  }

  /** The module that serves `nr`, if any. */
  moduleOf(nr: number): string | undefined {
    return this.#handlers.get(nr)?.module;
  }

  /** Whether `nr` was overridden (and must reach the host). */
  isOverridden(nr: number): boolean {
    return this.#overridden.has(nr);
  }

  /** All syscall numbers with a handler. */
  numbers(): number[] {
    return [...this.#handlers.keys()].sort((a, b) => a - b);
  }
}

/**
 * Serves one call: the handler's result, `-errno` for a
 * {@linkcode SyscallError}, or `-ENOSYS` (reported once per syscall through
 * `warn`) when nothing handles it.
 */
export function dispatch(
  registry: SyscallRegistry,
  call: SyscallCall,
  warn: (message: string) => void,
  warned: Set<number>,
): bigint {
  const handler = registry.handler(call.nr);
  if (!handler) {
    if (!warned.has(call.nr)) {
      warned.add(call.nr);
      warn(`hermitux: unsupported syscall ${syscallName(call.nr)} (${call.nr})`);
    }
    return BigInt(-E.ENOSYS);
  }
  try {
    return BigInt(handler(call));
  } catch (e) {
    if (e instanceof UnsupportedError && !warned.has(call.nr)) {
      warned.add(call.nr);
      warn(`hermitux: unsupported syscall ${syscallName(call.nr)} (${call.nr}): ${e.message}`);
    }
    if (e instanceof SyscallError) return BigInt(-e.errno);
    throw e;
  } finally {
    unpinBuffers();
  }
}

/**
 * A use of a syscall hermitux does not provide (e.g. clone for a new
 * process): the guest gets ENOSYS and stderr names it once, like a syscall
 * with no handler.
 */
export class UnsupportedError extends SyscallError {
  /**
   * @param what names the unsupported use.
   * @param errno what the guest gets (ENOSYS, or Linux's answer for a use it refuses)
   */
  constructor(what: string, errno: number = E.ENOSYS) {
    super(errno, what);
  }
}
