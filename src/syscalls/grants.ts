/**
 * What a run was granted: the network (src/net/policy.ts) and the resource
 * limits (limits.ts). One object per run, shared by its processes through
 * the process table (`ProcessHost.grants`); a process with no
 * table (a registry used alone) gets nothing: no network, default limits.
 * @module
 */
import { NetPolicy } from "../net/policy.ts";
import type { Process } from "./registry.ts";
import { type LimitGrants, limitGrants } from "./limits.ts";

/** The grants of one run. */
export interface Grants {
  /** The network grant. */
  readonly net: NetPolicy;
  /** Ceilings and starting values of the limits the guest sees as rlimits. */
  readonly limits: LimitGrants;
}

let none: Grants | undefined;
const KEY = "grants";

/** The grants that apply to `p`. */
export function grantsOf(p: Process): Grants {
  const g = p.state.get(KEY) as Grants | undefined;
  if (g) return g;
  return none ??= { net: NetPolicy.deny(), limits: limitGrants({}) };
}

/** Sets the run's grants for `p` (the process table does, for each process). */
export function attachGrants(p: Process, g: Grants): void {
  p.state.set(KEY, g);
}
