/**
 * Specialization: a registry that serves only an allowed set of syscalls
 * (e.g. what `hermitux analyze` found a program can make). Modules that
 * serve none of them are not registered; every other syscall number is
 * overridden by a denial, which also routes it past the guest kernel's own
 * table (ROUTE_HOST), so no guest-kernel handler outside the set runs.
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { type SyscallModule, SyscallRegistry } from "./registry.ts";
import { SYSCALL_NAMES, SYSCALL_NUMBERS, syscallName } from "./table.ts";
import { GUEST_SYSCALLS } from "../kernel/local.ts";

const SIGSYS = 31;

/** What a specialized registry keeps and removes, for a report. */
export interface SpecializationReport {
  /** Syscalls allowed (with a name in the x86-64 table). */
  allowed: number;
  /** Of those, how many hermitux can serve. */
  allowedServable: number;
  /** Syscalls hermitux could otherwise serve (host modules or guest kernel). */
  servable: number;
  /** Modules registered, of those offered. */
  modules: { loaded: string[]; total: number };
  /** Guest-kernel syscalls reachable, of those it has. */
  guestKernel: { reachable: number; total: number };
}

/** Options of {@linkcode specializedRegistry}. */
export interface SpecializeOptions {
  /** Where the first use of each denied syscall is named (default: stderr). */
  warn?: (message: string) => void;
  /** End the run (SIGSYS, as seccomp's kill action) at the first denied syscall. */
  strict?: boolean;
}

/**
 * A registry with `modules` restricted to the syscall numbers in `allowed`;
 * every other number returns ENOSYS (named once) or, with `strict`, ends
 * the run with SIGSYS.
 */
export function specializedRegistry(
  modules: readonly SyscallModule[],
  allowed: Iterable<number>,
  options: SpecializeOptions = {},
): { registry: SyscallRegistry; report: SpecializationReport } {
  const allow = new Set(allowed);
  const warn = options.warn ??
    ((m: string) => Deno.stderr.writeSync(new TextEncoder().encode(m + "\n")));
  const full = new SyscallRegistry();
  for (const m of modules) full.register(m);
  const loaded = modules.filter((m) =>
    Object.keys(m.handlers).some((name) => allow.has(SYSCALL_NUMBERS.get(name) ?? -1))
  );
  const registry = new SyscallRegistry();
  for (const m of loaded) registry.register(m);
  const warned = new Set<number>();
  for (let nr = 0; nr < SYSCALL_NAMES.length; nr++) {
    if (allow.has(nr)) continue;
    registry.override(nr, ({ process }) => {
      if (!warned.has(nr)) {
        warned.add(nr);
        warn(`hermitux: syscall ${syscallName(nr)} (${nr}) denied: not in the allowed set`);
      }
      if (options.strict) process.exit(0, SIGSYS);
      throw new SyscallError(E.ENOSYS);
    }, "specialize");
  }
  const guest = Object.keys(GUEST_SYSCALLS);
  const servable = new Set([...full.numbers(), ...guest.map((n) => SYSCALL_NUMBERS.get(n) ?? -1)]);
  return {
    registry,
    report: {
      allowed: [...allow].filter((nr) => nr >= 0 && nr < SYSCALL_NAMES.length).length,
      allowedServable: [...allow].filter((nr) => servable.has(nr)).length,
      servable: servable.size,
      modules: { loaded: loaded.map((m) => m.name), total: modules.length },
      guestKernel: {
        reachable: guest.filter((n) => allow.has(SYSCALL_NUMBERS.get(n) ?? -1)).length,
        total: guest.length,
      },
    },
  };
}

/** Reads an allow list: `hermitux analyze --json` output, or a JSON array of names or numbers. */
export function readAllowList(text: string): number[] {
  const j = JSON.parse(text);
  const list: unknown[] = Array.isArray(j) ? j : j.numbers ?? j.names;
  if (!Array.isArray(list)) throw new Error("an allow list needs 'numbers' or 'names'");
  return list.map((x) => {
    const nr = typeof x === "number" ? x : SYSCALL_NUMBERS.get(String(x)) ?? -1;
    if (!Number.isInteger(nr) || nr < 0) throw new Error(`unknown syscall '${x}'`);
    return nr;
  });
}
