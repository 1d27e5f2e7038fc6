/**
 * Threads: `clone`/`clone3` with the flags of glibc's and musl's
 * pthread_create, `exit` of one thread, and `fork`/`vfork`/process clones
 * refused with ENOSYS. The VM provides the threads (one vCPU each) through
 * {@linkcode ThreadHost}; without one, a guest has one thread.
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { type Process, type SyscallModule, UnsupportedError } from "./registry.ts";
import { futexWake } from "./futex.ts";
import { signalsOf } from "./signal.ts";

/** What a new thread starts with, from clone's or clone3's arguments. */
export interface CloneSpec {
  /** CLONE_* flags. */
  flags: bigint;
  /** The new thread's stack pointer (0: the caller's). */
  stack: bigint;
  /** CLONE_PARENT_SETTID: where the new tid is stored. */
  parentTid: bigint;
  /** CLONE_CHILD_SETTID / CLONE_CHILD_CLEARTID address. */
  childTid: bigint;
  /** CLONE_SETTLS: the new thread's FS base. */
  tls: bigint;
}

/** The VM's side of threads, for the syscall modules. */
export interface ThreadHost {
  /** Tid of the thread whose syscall is being served. */
  readonly current: number;
  /** Whether that thread runs on the main host thread, which may wait (serving the others). */
  readonly onMain: boolean;
  /**
   * Whether its call came exitless (its vCPU still runs): a call that must
   * wait has to find out before it does anything, as park then throws.
   */
  readonly polled: boolean;
  /** Guest threads alive. */
  readonly count: number;
  /** The live threads, each with whether it waits parked in a syscall (for /proc). */
  list(): { tid: number; parked: boolean }[];
  /** Starts a thread as clone's child (rax 0 at the caller's return address); its tid. */
  spawn(spec: CloneSpec): number;
  /** Ends the calling thread after this call; returns its clear-child-tid address (0: none). */
  exitCurrent(): bigint;
  /**
   * Leaves the calling thread (not on main) stopped when this call returns,
   * until {@linkcode ThreadHost.resume}; at `deadline` (host monotonic ns)
   * `onTimeout` runs instead; when a signal must interrupt it,
   * `onInterrupt` (default: the call returns EINTR). Throws
   * {@linkcode WouldBlock} when the call came exitless. `watch`: host
   * pollfds (8 bytes each) whose readiness makes the deadline now.
   */
  park(
    deadline: bigint,
    onTimeout: () => void,
    onInterrupt?: () => void,
    watch?: Uint8Array,
  ): void;
  /** Continues parked thread `tid` with `ret` as its syscall's result. */
  resume(tid: number, ret: bigint): void;
  /** Continues parked thread `tid` by running its syscall again (it is now ready to succeed). */
  restart(tid: number): void;
  /** Whether `tid` is a live thread. */
  has(tid: number): boolean;
  /** Makes every other running thread's vCPU leave guest mode once (a full barrier). */
  barrier(): void;
  /**
   * CPU time in ns of live thread `tid` since it started (undefined: no such
   * thread), or with no `tid` of the whole process, ended threads included:
   * the CPU clocks of the host threads that run its vCPUs.
   */
  cpuTime?(tid?: number): bigint | undefined;
}

/**
 * Thrown by {@linkcode ThreadHost.park} while the calling thread's vCPU is
 * still running (its call came exitless): nothing is done, and the guest
 * makes the same call again through the doorbell, where it can park.
 */
export class WouldBlock extends Error {
  constructor() {
    super("the call would block: ring the doorbell");
  }
}

const THREADS_KEY = "threads";

/** The VM's threads for `p`, if it provides them. */
export function threadsOf(p: Process): ThreadHost | undefined {
  return p.state.get(THREADS_KEY) as ThreadHost | undefined;
}

/** Installs the VM's threads for `p`. */
export function attachThreads(p: Process, t: ThreadHost): void {
  p.state.set(THREADS_KEY, t);
}

/** Linux's CLONE_* flags. */
export const CLONE = {
  VM: 0x100n,
  FS: 0x200n,
  FILES: 0x400n,
  SIGHAND: 0x800n,
  PIDFD: 0x1000n,
  PTRACE: 0x2000n,
  VFORK: 0x4000n,
  PARENT: 0x8000n,
  THREAD: 0x10000n,
  NEWNS: 0x20000n,
  SYSVSEM: 0x40000n,
  SETTLS: 0x80000n,
  PARENT_SETTID: 0x100000n,
  CHILD_CLEARTID: 0x200000n,
  DETACHED: 0x400000n,
  UNTRACED: 0x800000n,
  CHILD_SETTID: 0x1000000n,
  IO: 0x80000000n,
} as const;

/** membarrier(2) commands served: a barrier is every other vCPU leaving guest mode. */
const MEMBARRIER = {
  QUERY: 0,
  GLOBAL: 1,
  PRIVATE_EXPEDITED: 8,
  REGISTER_PRIVATE_EXPEDITED: 16,
  SUPPORTED: 1 | 8 | 16,
} as const;

/** The flags a thread clone must have, and those it may add. */
const THREAD_MUST = CLONE.VM | CLONE.FS | CLONE.FILES | CLONE.SIGHAND | CLONE.THREAD;
const THREAD_MAY = THREAD_MUST | CLONE.SYSVSEM | CLONE.SETTLS | CLONE.PARENT_SETTID |
  CLONE.CHILD_CLEARTID | CLONE.CHILD_SETTID | CLONE.DETACHED | CLONE.UNTRACED | CLONE.IO;

function spawn(p: Process, spec: CloneSpec, name: string): number {
  const f = spec.flags;
  // Linux's own consistency rules first (copy_process).
  if ((f & CLONE.THREAD) && !(f & CLONE.SIGHAND)) throw new SyscallError(E.EINVAL);
  if ((f & CLONE.SIGHAND) && !(f & CLONE.VM)) throw new SyscallError(E.EINVAL);
  if ((f & THREAD_MUST) !== THREAD_MUST || (f & ~THREAD_MAY & ~0xffn) !== 0n) {
    // A new process (fork-like), or sharing we do not model.
    throw new UnsupportedError(`${name} of a new process (flags 0x${f.toString(16)})`);
  }
  const t = threadsOf(p);
  if (!t) throw new SyscallError(E.EAGAIN);
  return t.spawn(spec);
}

/** The thread module. */
export const threadModule: SyscallModule = {
  name: "thread",
  partial: {
    clone: "threads only (CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD); " +
      "new processes ENOSYS",
    clone3: "threads only, as clone; no set_tid, cgroup or pidfd",
    exit: "ends the calling thread; robust futex lists are not walked",
    membarrier: "QUERY, GLOBAL and PRIVATE_EXPEDITED (with its REGISTER); no SYNC_CORE or RSEQ",
  },
  handlers: {
    clone({ args: [flags, stack, parentTid, childTid, tls], process: p }) {
      return spawn(p, { flags, stack, parentTid, childTid, tls }, "clone");
    },
    clone3({ args: [argsAddr, size], process: p }) {
      // struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal,
      // stack, stack_size, tls, set_tid, set_tid_size, cgroup.
      if (size < 64n || size > 4096n) throw new SyscallError(E.EINVAL);
      const words = Number(size < 88n ? size : 88n) / 8;
      const a: bigint[] = [];
      for (let i = 0; i < 11; i++) a.push(i < words ? p.mem.u64(argsAddr + BigInt(i * 8)) : 0n);
      const [flags, , childTid, parentTid, exitSignal, stack, stackSize, tls, setTid] = a;
      if (exitSignal !== 0n || setTid !== 0n || (flags & CLONE.PIDFD)) {
        throw new SyscallError(E.EINVAL);
      }
      if ((stack === 0n) !== (stackSize === 0n)) throw new SyscallError(E.EINVAL);
      return spawn(p, { flags, stack: stack + stackSize, parentTid, childTid, tls }, "clone3");
    },
    membarrier({ args: [cmd, flags], process: p }) {
      const c = Number(BigInt.asUintN(32, cmd));
      if (flags !== 0n && c !== MEMBARRIER.QUERY) throw new SyscallError(E.EINVAL);
      switch (c) {
        case MEMBARRIER.QUERY:
          return MEMBARRIER.SUPPORTED;
        case MEMBARRIER.REGISTER_PRIVATE_EXPEDITED:
          p.state.set("membarrier.registered", true);
          return 0;
        case MEMBARRIER.PRIVATE_EXPEDITED:
          if (!p.state.get("membarrier.registered")) throw new SyscallError(E.EPERM);
          threadsOf(p)?.barrier();
          return 0;
        case MEMBARRIER.GLOBAL:
          threadsOf(p)?.barrier();
          return 0;
      }
      throw new SyscallError(E.EINVAL);
    },
    exit({ args: [code], process: p }) {
      const t = threadsOf(p);
      if (!t || t.count <= 1) {
        p.exit(Number(code & 0xffn));
        return 0;
      }
      // Signals sent to this thread alone die with it, as on Linux.
      signalsOf(p).forgetThread(t.current);
      const ctid = t.exitCurrent();
      if (ctid !== 0n) {
        // CLONE_CHILD_CLEARTID: what pthread_join waits for.
        try {
          p.mem.view.setUint32(p.mem.check(ctid, 4), 0, true);
          futexWake(p, ctid, 1, 0xffffffff);
        } catch (e) {
          if (!(e instanceof SyscallError)) throw e;
        }
      }
      return 0;
    },
  },
};
