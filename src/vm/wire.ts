/**
 * What the main thread and the vCPU runners share: the layout of each
 * runner's control words (the start of its `struct runner`), its states,
 * and the kick that gets a thread out of KVM_RUN.
 * @module
 */
import { hostSyscall } from "../syscalls/host.ts";

/**
 * Indexes in a runner's control words (int32 words of `struct runner`).
 * `intr`: main sets 1 to ask for an interrupt; the runner sets 2 when it reports one. */
export const CTL = { state: 0, tid: 1, done: 2, intr: 3, size: 4 } as const;

/** A runner's state, written by the side that hands over. */
export const WSTATE = {
  /** Idle in the pool: no guest thread. */
  IDLE: 0,
  /** Running its vCPU (main sets it to start or resume). */
  RUN: 1,
  /** Out of KVM_RUN with an exit for main to serve (the runner sets it). */
  EXITED: 2,
  /** Leave the thread (main sets it at the end of the run). */
  QUIT: 3,
} as const;

const NR_TGKILL = 234, SIGALRM = 14;

/**
 * Gets host thread `tid` out of KVM_RUN soon: `immediate_exit` covers a
 * thread about to enter it, the signal one already inside (KVM_RUN returns
 * EINTR; the process ignores SIGALRM otherwise).
 */
export function kick(runAddr: bigint, pid: number, tid: number): void {
  if (runAddr !== 0n) {
    new Uint8Array(
      Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(runAddr)!, 8),
    )[1] = 1;
  }
  hostSyscall(NR_TGKILL, pid, tid, SIGALRM);
}

/** This host thread's id. */
export function gettid(): number {
  return Number(hostSyscall(186));
}
