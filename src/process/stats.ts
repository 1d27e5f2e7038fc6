/**
 * A guest process's counters for `RunResult.perProcess`: made when it
 * starts, summed over its images (each execve ends one).
 * @module
 */
import type { ProcessStats, RunResult } from "../vm/options.ts";
import type { Guest } from "../vm/guest.ts";

/** A process's counters before its first image ends. */
export function newStats(pid: number, ppid: number, vm: Guest): ProcessStats {
  const command = vm.process!.argv.join(" ");
  return {
    pid,
    ppid,
    command: command.length > 60 ? command.slice(0, 57) + "..." : command,
    status: 0,
    images: 0,
    runMs: 0,
    exits: 0,
    hostCalls: 0,
    exitless: 0,
    syscalls: {},
  };
}

/** Adds an ended image's result to its process's counters. */
export function addImage(to: ProcessStats, r: RunResult): void {
  const s = r.stats;
  to.status = r.status;
  to.images++;
  to.runMs += s.runMs;
  to.exits += s.exits;
  to.hostCalls += s.hostCalls;
  to.exitless += s.exitless;
  for (const [k, n] of Object.entries(s.syscalls)) to.syscalls[k] = (to.syscalls[k] ?? 0) + n;
}
