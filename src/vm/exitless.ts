/**
 * The exitless host-call transport's policy: which syscalls a running vCPU
 * may have served without leaving guest mode, and how long the main thread
 * keeps polling. The protocol itself is in src/kernel/hostcall.c.
 *
 * The main thread serves a posted request while the vCPU spins on its
 * block, so it must not need the vCPU's registers or FPU state (clone,
 * rt_sigreturn, sigaltstack), end or stop the thread (exit, the waits), or
 * hold the main thread in a long wait (poll, futex, locks): those ring the
 * doorbell as before. A call that turns out to block (a read of an empty
 * pipe) is answered "ring the doorbell" before it has done anything, and
 * parks there.
 * @module
 */
import type { Platform } from "../kvm/platform.ts";
import { SYSCALL_NUMBERS } from "../syscalls/table.ts";
import { CHEAP_EXIT_US, type HostMeasurement } from "./hostprobe.ts";

/**
 * How host calls reach the host: MMIO exits only, exitless while the host
 * polls, or `auto`: by exit until the program has made
 * {@linkcode AUTO_EXITLESS_CALLS} of them, exitless from then on.
 */
export type HostCalls = "exit" | "exitless" | "auto";

/**
 * Host calls an `auto` run makes by exit before it turns exitless: a
 * program that makes few (a hello makes 6) never pays for the polling
 * thread, one that makes many pays for 64 exits (~3-6 ms on kvm_pvm).
 */
export const AUTO_EXITLESS_CALLS = 64;

/** Syscalls that always take the doorbell. */
export const DOORBELL_ONLY: ReadonlySet<number> = new Set(
  [
    "sigaltstack",
    "clone",
    "clone3",
    "fork",
    "vfork",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "pause",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "nanosleep",
    "clock_nanosleep",
    "futex",
    "wait4",
    "waitid",
    "flock",
    "fcntl",
    "connect",
    "accept",
    "accept4",
    "membarrier",
  ].map((n) => SYSCALL_NUMBERS.get(n)!),
);

/**
 * How long the main thread polls after the last request before it sleeps
 * (and guests kick it awake, or ring the doorbell where KVM has no
 * ioeventfd): waking a sleeping host thread costs 0.1–0.3 ms on the
 * nested kvm_pvm machines, so a program that makes calls often never
 * finds the host asleep.
 */
export const POLL_WINDOW_MS = 2;

/**
 * How long a vCPU spins for the poller's answer before it rings the
 * doorbell instead (the request marked posted, so it is served once); ten
 * times as long after it kicked a sleeping poller awake. A safety valve for
 * an overloaded host, where the poller can be off its CPU for whole time
 * slices: spinning on would keep the vCPU's thread on a CPU the poller
 * needs. Plain calls are answered in about a microsecond, most others in
 * tens; shorter limits (0.2 and 1 ms) turned most calls into exits at a
 * load average of 9 on two CPUs (tests/exitless_test.ts).
 */
export const POSTED_WAIT_US = 10_000;

/**
 * The transport a run uses unless told, from `measured` (this host's
 * costs, src/vm/hostprobe.ts: what boot() and `run` use, measured once and
 * cached) when given, else from the platform:
 *
 * - a host call by exit cheaper than {@linkcode CHEAP_EXIT_US} (hardware
 *   KVM: an exit of 1-2 µs, 5-10 µs with hermitux serving it) does not pay
 *   for a core spent polling: `exit`;
 * - one CPU: `exit` (the poller would take the guest's CPU);
 * - four CPUs or more: `exitless`;
 * - two or three: `auto`.
 *
 * Without a measurement (`HERMITUX_HOST_PROBE=off`, or the probe failed)
 * kvm_pvm stands for dear exits (28-100 µs) and hardware KVM for cheap
 * ones. On the 2-CPU kvm_pvm development machine the probe measured a host
 * call by exit at 57-90 µs and a trap at 13-19 µs: `auto`, as before.
 *
 * Exitless keeps two host threads busy, the vCPU's runner and the polling
 * main thread, and Deno's own threads (V8's compilers, its GC) need a core
 * besides, most of all in a fresh process: on the 2-CPU kvm_pvm machine a
 * static hello took 75 ms from the CLI exitless against 68 ms by exit
 * (medians of 10, alternated), while python3 -c pass took 117 against 122
 * ms and dd's 40,000 reads and writes 0.03 s against 0.8 s. So `auto`
 * starts by exit and turns exitless once the program makes calls (see
 * docs/TRANSPORT.md).
 */
export function defaultHostCalls(
  platform: Platform,
  cpus: number = navigator.hardwareConcurrency,
  measured?: HostMeasurement,
): HostCalls {
  return choose(platform, cpus, measured).mode;
}

/** Why {@linkcode defaultHostCalls} chose what it did, for `run --verbose`. */
export function hostCallsReason(
  platform: Platform,
  cpus: number = navigator.hardwareConcurrency,
  measured?: HostMeasurement,
): string {
  return choose(platform, cpus, measured).why;
}

function choose(
  platform: Platform,
  cpus: number,
  measured?: HostMeasurement,
): { mode: HostCalls; why: string } {
  const auto = `exits until the program has made ${AUTO_EXITLESS_CALLS} host calls, then exitless`;
  if (measured) {
    if (measured.exitUs < CHEAP_EXIT_US) {
      return {
        mode: "exit",
        why: `an exit under ${CHEAP_EXIT_US} µs: a polling core would not pay`,
      };
    }
    if (cpus < 2) return { mode: "exit", why: "1 CPU: a polling thread would take the guest's" };
    const dear = `an exit over ${CHEAP_EXIT_US} µs, ${cpus} CPUs`;
    if (cpus >= 4) return { mode: "exitless", why: `${dear}: a core is spare for polling` };
    return { mode: "auto", why: `${dear}: ${auto}` };
  }
  if (platform !== "kvm_pvm") return { mode: "exit", why: `${platform}: a VM exit costs 1-2 µs` };
  if (cpus < 2) {
    return { mode: "exit", why: "kvm_pvm, 1 CPU: a polling thread would take the guest's CPU" };
  }
  if (cpus >= 4) {
    return {
      mode: "exitless",
      why: `kvm_pvm, ${cpus} CPUs: an exit costs 40-100 µs and a core is spare`,
    };
  }
  return { mode: "auto", why: `kvm_pvm, ${cpus} CPUs: ${auto}` };
}
