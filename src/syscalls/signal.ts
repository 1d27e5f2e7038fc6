/**
 * Signals, on the host: each process's dispositions, pending signals and
 * their `siginfo`, the alternate stack, the ITIMER_REAL timer (`alarm`,
 * `setitimer`), POSIX timers (`timer_create`) and the run's own deadline
 * (`--timeout`), multiplexed on one host interval timer. The blocked mask
 * lives in the guest kernel (its `rt_sigprocmask` needs no exit);
 * {@linkcode SignalState} reads and writes it in guest memory, and mirrors
 * the pending set there so that the guest kernel asks the host to deliver
 * when it unblocks a pending signal.
 *
 * The handlers here only change that state; the VM builds and unwinds
 * signal frames (src/vm/sigframe.ts), since that needs the vCPU.
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { bufferAddress, hostClockNs, hostSyscall } from "./host.ts";
import type { Process } from "./registry.ts";
import type { GuestMemory } from "../vm/memory.ts";

/** Linux signal numbers. */
export const SIGNO = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
} as const; // deno-fmt-ignore

/** `sa_flags` bits. */
export const SA = {
  SIGINFO: 4n,
  RESTORER: 0x04000000n,
  ONSTACK: 0x08000000n,
  RESTART: 0x10000000n,
  NODEFER: 0x40000000n,
  RESETHAND: 0x80000000n,
} as const;

/** `si_code` values. */
export const SI = {
  USER: 0,
  KERNEL: 0x80,
  QUEUE: -1,
  TKILL: -6,
  SEGV_MAPERR: 1,
  SEGV_ACCERR: 2,
  ILL_ILLOPN: 2,
  FPE_INTDIV: 1,
  FPE_FLTDIV: 3,
  FPE_FLTOVF: 4,
  FPE_FLTUND: 5,
  FPE_FLTRES: 6,
  FPE_FLTINV: 7,
  TRAP_BRKPT: 1,
  TRAP_TRACE: 2,
  BUS_ADRALN: 1,
  BUS_ADRERR: 2,
} as const;

/** si_code of a POSIX timer's signal. */
const SI_TIMER = -2;

/** `SIG_DFL` and `SIG_IGN` as handler values. */
export const SIG_DFL = 0n, SIG_IGN = 1n;
/** Alternate-stack flags. */
export const SS = { ONSTACK: 1, DISABLE: 2, AUTODISARM: 0x80000000 } as const;
/** Linux's MINSIGSTKSZ for sigaltstack's size check. */
const NSIG = 64;
/** sizeof(struct k_sigaction) in src/kernel/abi.h. */
const ACTION_SIZE = 32;
const UNBLOCKABLE = (1n << 8n) | (1n << 18n); // SIGKILL, SIGSTOP
const NSEC = 1_000_000_000n;
const MAX_NS = (1n << 63n) - 1n;
const CLOCK_MONOTONIC = 1;
const SIGEV_NONE = 1, SIGEV_THREAD_ID = 4;
/** Linux's bound on a timer's overrun count (DELAYTIMER_MAX). */
const DELAYTIMER_MAX = 0x7fffffff;
const NR_CLOCK_NANOSLEEP = 230, NR_PPOLL = 271;
const TIMER_ABSTIME = 1;

/** A signal's bit in a mask. */
export const bit = (sig: number): bigint => 1n << BigInt(sig - 1);

/** What an ignored, default-handled or caught signal does. */
export type DefaultAction = "term" | "core" | "ignore" | "stop";

/** Linux's default action for `sig`. */
export function defaultAction(sig: number): DefaultAction {
  switch (sig) {
    case SIGNO.SIGQUIT:
    case SIGNO.SIGILL:
    case SIGNO.SIGTRAP:
    case SIGNO.SIGABRT:
    case SIGNO.SIGBUS:
    case SIGNO.SIGFPE:
    case SIGNO.SIGSEGV:
    case SIGNO.SIGXCPU:
    case SIGNO.SIGXFSZ:
    case SIGNO.SIGSYS:
      return "core";
    case SIGNO.SIGCHLD:
    case SIGNO.SIGURG:
    case SIGNO.SIGWINCH:
    case SIGNO.SIGCONT:
      return "ignore";
    case SIGNO.SIGSTOP:
    case SIGNO.SIGTSTP:
    case SIGNO.SIGTTIN:
    case SIGNO.SIGTTOU:
      return "stop";
  }
  return "term";
} // deno-fmt-ignore

/** A `siginfo_t`, as far as hermitux fills one. */
export interface SigInfo {
  /** si_signo. */
  signo: number;
  /** si_code. */
  code: number;
  /** si_pid and si_uid (kill, tkill, tgkill). */
  pid?: number;
  /** si_uid. */
  uid?: number;
  /** si_addr (faults). */
  addr?: bigint;
  /** The raw 128 bytes (rt_sigqueueinfo), written as given. */
  raw?: Uint8Array;
}

/** A POSIX timer (timer_create). */
export interface PosixTimer {
  /** The clock it was created on (REALTIME, MONOTONIC or BOOTTIME). */
  clock: number;
  /** SIGEV_SIGNAL (or SIGEV_THREAD, as the kernel takes it), SIGEV_NONE or SIGEV_THREAD_ID. */
  notify: number;
  /** The signal it sends. */
  signo: number;
  /** The thread SIGEV_THREAD_ID sends it to. */
  tid: number;
  /** sigev_value, given back in si_value. */
  value: bigint;
  /** Next expiry (host monotonic ns, 0 = disarmed) and the interval (0: once). */
  due: bigint;
  interval: bigint;
  /** The overrun count of the signal delivered before `sent`. */
  delivered: number;
  /**
   * The siginfo of its last signal. While queued, expiries add to its
   * si_overrun; once taken, that count is what timer_getoverrun reports.
   */
  sent?: SigInfo;
}

/** A `struct sigaction` as the kernel keeps it. */
export interface SigAction {
  /** sa_handler: SIG_DFL, SIG_IGN or a guest address. */
  handler: bigint;
  /** sa_flags. */
  flags: bigint;
  /** sa_restorer. */
  restorer: bigint;
  /** sa_mask. */
  mask: bigint;
}

/** What the VM gives a process's signal state. */
export interface SignalHost {
  /** Guest addresses of the guest kernel's blocked mask and pending mirror. */
  maskAddr?: number;
  /** See `maskAddr`. */
  pendingAddr?: number;
  /**
   * Guest address of the dispositions (`struct k_sigaction[64]`, signal n
   * at n - 1), which the guest kernel reads and writes for rt_sigaction
   * (all but SIG_DFL and SIG_IGN, which it passes on). Unset: kept here.
   */
  actionsAddr?: number;
  /** The user stack pointer at the current syscall. */
  userSp(): bigint;
  /**
   * With several threads: who is being served, where each thread's mask and
   * pending mirror live, and how to get a signal to another thread (it is
   * woken from a wait or interrupted, and acts on it). Without, the one
   * thread's are at `maskAddr` and `pendingAddr`.
   */
  threads?: {
    current(): number;
    maskAddr(tid: number): number | undefined;
    pendingAddr(tid: number): number | undefined;
    tids(): number[];
    notify(tid: number): void;
  };
  /** Arms the host timer to fire in `ns` nanoseconds (repeating), or disarms it (undefined). */
  armTimer(ns: bigint | undefined): void;
}

/** The host's CLOCK_MONOTONIC in ns. */
export function monotonicNs(): bigint {
  return hostClockNs(CLOCK_MONOTONIC);
}

/** One process's signal dispositions, pending set, alternate stack and timers. */
export class SignalState {
  /** Dispositions, indexed by signal number (0 unused), without `actionsAddr`. */
  readonly #actions: SigAction[] = Array.from(
    { length: NSIG + 1 },
    () => ({ handler: SIG_DFL, flags: 0n, restorer: 0n, mask: 0n }),
  );

  /** `sig`'s disposition (1 ≤ sig ≤ 64). */
  action(sig: number): SigAction {
    const at = this.host.actionsAddr;
    if (at === undefined || !this.mem) return this.#actions[sig];
    // The guest writes these: take only what is allowed.
    if (sig === SIGNO.SIGKILL || sig === SIGNO.SIGSTOP) return this.#actions[sig];
    const v = this.mem.view, o = at + (sig - 1) * ACTION_SIZE;
    return {
      handler: v.getBigUint64(o, true),
      flags: v.getBigUint64(o + 8, true) & 0xffffffffn,
      restorer: v.getBigUint64(o + 16, true),
      mask: v.getBigUint64(o + 24, true) & ~UNBLOCKABLE,
    };
  }

  /** Sets `sig`'s disposition. */
  setAction(sig: number, a: SigAction): void {
    const at = this.host.actionsAddr;
    if (at === undefined || !this.mem) {
      this.#actions[sig] = a;
      return;
    }
    const v = this.mem.view, o = at + (sig - 1) * ACTION_SIZE;
    v.setBigUint64(o, a.handler, true);
    v.setBigUint64(o + 8, a.flags, true);
    v.setBigUint64(o + 16, a.restorer, true);
    v.setBigUint64(o + 24, a.mask, true);
  }
  /** The alternate signal stack. */
  altstack: { sp: bigint; flags: number; size: bigint } = { sp: 0n, flags: SS.DISABLE, size: 0n };
  #suspend = new Map<number | undefined, bigint>();

  /** The mask rt_sigsuspend replaced (the thread being served's), saved in its next signal frame. */
  get suspendMask(): bigint | undefined {
    return this.#suspend.get(this.#current());
  }

  set suspendMask(m: bigint | undefined) {
    if (m === undefined) this.#suspend.delete(this.#current());
    else this.#suspend.set(this.#current(), m);
  }
  /** Set by rt_sigreturn: the VM unwinds the frame after the call. */
  sigreturn = false;
  /** ITIMER_REAL: next expiry (monotonic ns, 0 = disarmed) and interval. */
  real = { due: 0n, interval: 0n };
  /** POSIX timers by id (not inherited by fork, gone at execve: each image has its own state). */
  readonly timers: Map<number, PosixTimer> = new Map();
  #nextTimerId = 0;
  /** ITIMER_VIRTUAL and ITIMER_PROF, once set (cputime.ts): they fire on CPU time. */
  cpuTimers?: { fire(): void; wakeAt(now: bigint): bigint | undefined };
  /** The run's end (monotonic ns), from --timeout. */
  runDeadline = MAX_NS;
  /** Another deadline the host timer must wake the main thread for (parked threads). */
  wakeAt?: () => bigint | undefined;
  /**
   * Waits on the main thread until host monotonic `until` or until other
   * threads need serving (then serves them); sleeps use it when set.
   */
  idle?: (until: bigint) => void;
  /**
   * For a thread that is not the main thread's: parks it until host
   * monotonic `until` (then its syscall returns `timeout()`) or until a
   * signal interrupts it (then `wake()`, default EINTR), instead of sleeping
   * here; both run as that thread. False when the caller is the main thread.
   */
  park?: (until: bigint, timeout: () => bigint, wake?: () => bigint) => boolean;
  /** Whether the process has ended (another thread called exit_group): waits stop. */
  ended?: () => boolean;
  /** Whether the run's time is up (seen by a sleeping call). */
  timedOut = false;
  /**
   * Other clocks looked at with the timers (RLIMIT_CPU: src/syscalls/limits.ts):
   * each says when it is next due (monotonic ns) and acts then.
   */
  readonly watches = new Set<{ due(): bigint; fire(now: bigint): void }>();
  /** When the VM wants another chance to deliver an async signal (monotonic ns, 0 = none). */
  retryAt = 0n;
  /** A stop signal acted on by default, for the process table to stop the process (0: none). */
  stopSignal = 0;
  #pending = 0n;
  /** Siginfo of each pending signal: one for a standard signal, a queue for a real-time one. */
  #info = new Map<number, SigInfo[]>();
  /** Thread-directed pending signals (tkill, tgkill) and their siginfo, by tid. */
  #threadPending = new Map<number, { set: bigint; info: Map<number, SigInfo[]> }>();
  #mask = 0n;
  #armedAt = -1n;

  /** @param mem guest memory (for the mask), @param host the VM's side. */
  constructor(readonly mem: GuestMemory | undefined, readonly host: SignalHost) {}

  #maskAddr(tid?: number): number | undefined {
    const t = this.host.threads;
    return t ? t.maskAddr(tid ?? t.current()) : this.host.maskAddr;
  }

  /** The blocked mask of the thread being served (in the guest kernel). */
  get mask(): bigint {
    return this.maskOf();
  }

  set mask(m: bigint) {
    m &= ~UNBLOCKABLE;
    const a = this.#maskAddr();
    if (a !== undefined && this.mem) this.mem.view.setBigUint64(a, m, true);
    else this.#mask = m;
  }

  /**
   * Thread `tid`'s blocked mask (default: the one being served). A thread
   * that has ended blocks everything: nothing is delivered on its way out
   * (its exit call returns through the same path as any other).
   */
  maskOf(tid?: number): bigint {
    const a = this.#maskAddr(tid);
    if (a === undefined && this.host.threads && this.mem) return ~0n;
    return a !== undefined && this.mem ? this.mem.view.getBigUint64(a, true) : this.#mask;
  }

  #current(): number | undefined {
    return this.host.threads?.current();
  }

  /** The pending set of the thread being served: the process's and its own. */
  get pending(): bigint {
    const tid = this.#current();
    return this.#pending | (tid === undefined ? 0n : this.#threadPending.get(tid)?.set ?? 0n);
  }

  #setPending(p: bigint): void {
    this.#pending = p;
    this.#mirror();
  }

  /** Called whenever the pending set changes (what makes a signalfd readable). */
  onPendingChange?: () => void;

  /** Signals pending for thread `tid` (the process's and its own), or for any thread. */
  pendingOf(tid: number | "any"): bigint {
    let set = this.#pending;
    for (const [t, own] of this.#threadPending) if (tid === "any" || t === tid) set |= own.set;
    return set;
  }

  /** Writes each thread's pending mirror (process-wide | its own) into the guest kernel. */
  #mirror(): void {
    this.onPendingChange?.();
    if (!this.mem) return;
    const t = this.host.threads;
    if (!t) {
      const a = this.host.pendingAddr;
      if (a !== undefined) this.mem.view.setBigUint64(a, this.#pending, true);
      return;
    }
    for (const tid of t.tids()) {
      const a = t.pendingAddr(tid);
      const own = this.#threadPending.get(tid)?.set ?? 0n;
      if (a !== undefined) this.mem.view.setBigUint64(a, this.#pending | own, true);
    }
  }

  /**
   * A signal for thread `tid` alone (tkill, tgkill). Another thread than
   * the one being served is told, to act on it as soon as it can.
   */
  raiseOn(tid: number, info: SigInfo): void {
    const t = this.host.threads;
    if (!t || tid === t.current() && t.tids().length === 1) return this.raise(info);
    const sig = info.signo, b = bit(sig);
    if (this.ignored(sig) && !(this.maskOf(tid) & b)) return;
    let own = this.#threadPending.get(tid);
    if (!own) this.#threadPending.set(tid, own = { set: 0n, info: new Map() });
    if (!enqueue(own.info, own.set & b, info)) return;
    own.set |= b;
    this.#mirror();
    if (!(this.maskOf(tid) & b) && tid !== t.current()) t.notify(tid);
  }

  /** Forgets the thread-directed signals of a thread that ended. */
  forgetThread(tid: number): void {
    this.#threadPending.delete(tid);
  }

  /**
   * After a process-directed signal: when the thread being served blocks
   * it, Linux picks another thread that does not; so do we.
   */
  #route(sig: number): void {
    const t = this.host.threads;
    if (!t || !(this.mask & bit(sig))) return;
    const other = t.tids().find((tid) => tid !== t.current() && !(this.maskOf(tid) & bit(sig)));
    if (other !== undefined) t.notify(other);
  }

  /**
   * Whether the process can be stopped (SIGSTOP, SIGTSTP…: job control).
   * Only once its threads run on runners among several processes, which the
   * process table stops serving; a lone process ignores stop signals.
   */
  stops = false;

  /** Whether `sig` is ignored (SIG_IGN, or SIG_DFL with a default to ignore, or to stop when it cannot). */
  ignored(sig: number): boolean {
    const h = this.action(sig).handler;
    if (h === SIG_IGN) return true;
    if (h !== SIG_DFL) return false;
    const d = defaultAction(sig);
    return d === "ignore" || (d === "stop" && !this.stops);
  }

  /** Generates `sig` for the process (as Linux's send_signal: ignored and unblocked is dropped). */
  raise(info: SigInfo): void {
    const sig = info.signo, b = bit(sig);
    if (this.ignored(sig) && !(this.mask & b)) return;
    if (!enqueue(this.#info, this.#pending & b, info)) return;
    this.#setPending(this.#pending | b);
    this.#route(sig);
  }

  /** Raises `sig` even if blocked or ignored: a fault (force_sig): unblocks it, resets SIG_IGN. */
  force(info: SigInfo): void {
    const sig = info.signo;
    if (this.action(sig).handler === SIG_IGN || this.mask & bit(sig)) {
      this.setAction(sig, { handler: SIG_DFL, flags: 0n, restorer: 0n, mask: 0n });
    }
    this.mask = this.mask & ~bit(sig);
    const tid = this.#current();
    if (tid !== undefined && (this.host.threads?.tids().length ?? 1) > 1) {
      // A fault belongs to the thread that made it.
      let own = this.#threadPending.get(tid);
      if (!own) this.#threadPending.set(tid, own = { set: 0n, info: new Map() });
      own.set |= bit(sig);
      own.info.set(sig, [info]);
      this.#mirror();
      return;
    }
    this.#info.set(sig, [info]);
    this.#setPending(this.#pending | bit(sig));
  }

  /** Forgets pending `sig` (its disposition became "ignore"). */
  discard(sig: number): void {
    for (const own of this.#threadPending.values()) {
      own.set &= ~bit(sig);
      own.info.delete(sig);
    }
    this.#info.delete(sig);
    this.#setPending(this.#pending & ~bit(sig));
  }

  /**
   * The lowest pending signal that is not blocked and must be acted on (a
   * handler or a fatal default), dropping ignored ones on the way; 0 if none.
   * Faults (SEGV, BUS, ILL, TRAP, FPE) come first, as on Linux.
   */
  next(): number {
    let ready = this.pending & ~this.mask;
    if (!ready) return 0;
    const sync = ready & (bit(4) | bit(5) | bit(7) | bit(8) | bit(11));
    if (sync) ready = sync;
    for (let sig = 1; sig <= NSIG; sig++) {
      if (!(ready & bit(sig))) continue;
      if (this.ignored(sig)) {
        this.discard(sig);
        continue;
      }
      return sig;
    }
    return 0;
  }

  /**
   * Waits until host fd `fd` is ready for `events` (poll bits), in slices
   * between which timers fire, other threads are served and signals are
   * checked: `"ready"`, or `"signal"` when one must be acted on (or the run
   * ends). What a blocking read does instead of blocking the host.
   */
  waitFd(fd: number, events: number): "ready" | "signal" {
    for (let first = true;; first = false) {
      if (!first) {
        this.fireTimers();
        if (this.timedOut || this.ended?.() || this.next()) return "signal";
        this.idle?.(monotonicNs()); // serve other threads
      }
      const r = pollFd(fd, events, first ? 0n : 10_000_000n);
      // The host timer's signal interrupts the wait: look again.
      if (r === BigInt(-E.EINTR)) continue;
      if (r !== 0n) return "ready"; // ready, hung up, or an error the read will report
    }
  }

  /** Removes pending `sig` (thread `tid`'s own first, default the served one's); its siginfo. */
  take(sig: number, tid = this.#current()): SigInfo {
    const own = tid === undefined ? undefined : this.#threadPending.get(tid);
    if (own && own.set & bit(sig)) {
      const info = dequeue(own.info, sig) ?? { signo: sig, code: SI.TKILL };
      if (!own.info.has(sig)) own.set &= ~bit(sig);
      this.#mirror();
      return info;
    }
    const info = dequeue(this.#info, sig) ?? { signo: sig, code: SI.KERNEL };
    // A real-time signal stays pending while more instances are queued.
    this.#setPending(this.#info.has(sig) ? this.#pending : this.#pending & ~bit(sig));
    return info;
  }

  /** Whether `sp` is on the alternate stack. */
  onAltstack(sp: bigint): boolean {
    const { sp: base, size } = this.altstack;
    return sp > base && sp - base <= size;
  }

  /** Linux's sas_ss_flags(sp). */
  altstackFlags(sp: bigint): number {
    if (this.altstack.size === 0n) return SS.DISABLE;
    return this.onAltstack(sp) ? SS.ONSTACK : 0;
  }

  /**
   * Raises SIGALRM if ITIMER_REAL has expired by `now`, and the signal of
   * each POSIX timer that has; reschedules interval timers.
   */
  fireTimers(now: bigint = monotonicNs()): void {
    if (now >= this.runDeadline) this.timedOut = true;
    let fired = false;
    this.cpuTimers?.fire();
    for (const w of this.watches) if (now >= w.due()) w.fire(now);
    const r = this.real;
    if (r.due !== 0n && now >= r.due) {
      this.raise({ signo: SIGNO.SIGALRM, code: SI.KERNEL, pid: 0, uid: 0 });
      if (r.interval > 0n) {
        // Overruns are skipped, as hrtimer_forward does.
        r.due += r.interval * ((now - r.due) / r.interval + 1n);
      } else r.due = 0n;
      fired = true;
    }
    for (const [id, t] of this.timers) {
      if (t.due === 0n || now < t.due) continue;
      this.#expire(id, t, now);
      fired = true;
    }
    if (fired) this.armHost(now);
  }

  /** The earliest expiry of ITIMER_REAL and the POSIX timers (host monotonic ns; 0: none). */
  nextDue(): bigint {
    let at = this.real.due;
    for (const t of this.timers.values()) {
      if (t.due !== 0n && (at === 0n || t.due < at)) at = t.due;
    }
    return at;
  }

  /** POSIX timer `id` has expired by `now`: its signal, or an overrun while the last is queued. */
  #expire(id: number, t: PosixTimer, now: bigint): void {
    let missed = 0n;
    if (t.interval > 0n) {
      missed = (now - t.due) / t.interval;
      t.due += t.interval * (missed + 1n);
    } else t.due = 0n;
    if (t.notify === SIGEV_NONE) return;
    // Linux queues one signal per timer; expiries meanwhile count as overruns.
    if (t.sent && this.#queued(t.sent)) {
      const v = new DataView(t.sent.raw!.buffer);
      v.setInt32(20, Math.min(DELAYTIMER_MAX, v.getInt32(20, true) + 1 + Number(missed)), true);
      return;
    }
    if (t.sent) t.delivered = overrunOf(t.sent);
    const raw = new Uint8Array(128), v = new DataView(raw.buffer);
    v.setInt32(0, t.signo, true);
    v.setInt32(8, SI_TIMER, true);
    v.setInt32(16, id, true);
    v.setInt32(20, Math.min(DELAYTIMER_MAX, Number(missed)), true);
    v.setBigUint64(24, t.value, true);
    const info: SigInfo = { signo: t.signo, code: SI_TIMER, raw };
    t.sent = info;
    const threads = this.host.threads;
    if (t.notify === SIGEV_THREAD_ID && threads?.tids().includes(t.tid)) this.raiseOn(t.tid, info);
    else this.raise(info);
  }

  /** timer_getoverrun: the overrun count of the timer's last signal taken (Linux's it_overrun_last). */
  overrun(t: PosixTimer): number {
    return t.sent && !this.#queued(t.sent) ? overrunOf(t.sent) : t.delivered;
  }

  /** Whether `info` is still queued (for the process or one of its threads). */
  #queued(info: SigInfo): boolean {
    if (this.#info.get(info.signo)?.includes(info)) return true;
    for (const own of this.#threadPending.values()) {
      if (own.info.get(info.signo)?.includes(info)) return true;
    }
    return false;
  }

  /** A new POSIX timer's id (the lowest unused from a running count, as Linux). */
  addTimer(t: PosixTimer): number {
    while (this.timers.has(this.#nextTimerId)) {
      this.#nextTimerId = (this.#nextTimerId + 1) & 0x7fffffff;
    }
    const id = this.#nextTimerId;
    this.#nextTimerId = (id + 1) & 0x7fffffff;
    this.timers.set(id, t);
    return id;
  }

  /**
   * Arms the host timer for the earliest of the run's deadline, ITIMER_REAL,
   * a retry and `wakeAt()` (other threads' timeouts).
   */
  armHost(now?: bigint, force = false): void {
    if (force) this.#armedAt = -1n;
    let at = this.runDeadline;
    const due = this.nextDue();
    if (due !== 0n && due < at) at = due;
    if (this.retryAt !== 0n && this.retryAt < at) at = this.retryAt;
    for (const w of this.watches) if (w.due() < at) at = w.due();
    const other = this.wakeAt?.();
    if (other !== undefined && other < at) at = other;
    const cpu = this.cpuTimers?.wakeAt(now ??= monotonicNs());
    if (cpu !== undefined && cpu < at) at = cpu;
    if (at === this.#armedAt) return;
    this.#armedAt = at;
    if (at === MAX_NS) return this.host.armTimer(undefined);
    const d = at - (now ?? monotonicNs());
    this.host.armTimer(d > 1000n ? d : 1000n);
  }

  /**
   * Sleeps on host clock `clock` (REALTIME or MONOTONIC) until `deadline`
   * (ns on that clock), waking for timers: `"signal"` when a signal must be
   * acted on (a handler runs or it kills), `"timeout"` when the run's time
   * is up, `"done"` at the deadline. `ready` may end the wait early (e.g.
   * rt_sigtimedwait's set). On another thread than the main one the wait
   * is `"parked"`: that thread's syscall returns `parked.timeout()` (default
   * 0) at the deadline and `parked.wake()` (default EINTR) when a signal
   * interrupts it.
   */
  sleep(
    clock: number,
    deadline: bigint,
    ready?: () => boolean,
    parked?: { timeout?: () => bigint; wake?: () => bigint },
  ): "done" | "signal" | "timeout" | "parked" {
    if (this.park) {
      const mono = monotonicNs(), now = clock === CLOCK_MONOTONIC ? mono : clockNs(clock);
      // What is due already needs no park.
      this.fireTimers(mono);
      if (this.timedOut) return "timeout";
      if (this.ended?.()) return "signal";
      if (ready?.()) return "done";
      if (this.next()) return "signal";
      if (now >= deadline) return "done";
      const until = deadline === MAX_NS ? MAX_NS : mono + (deadline - now);
      if (this.park(until, parked?.timeout ?? (() => 0n), parked?.wake)) return "parked";
    }
    const ts = new BigInt64Array(2);
    const addr = bufferAddress(new Uint8Array(ts.buffer));
    for (;;) {
      const mono = monotonicNs();
      this.fireTimers(mono);
      if (this.timedOut) return "timeout";
      if (this.ended?.()) return "signal";
      if (ready?.()) return "done";
      if (this.next()) return "signal";
      let wake = this.runDeadline;
      const due = this.nextDue();
      if (due !== 0n && due < wake) wake = due;
      const now = clock === CLOCK_MONOTONIC ? mono : clockNs(clock);
      if (now >= deadline) return "done";
      let until = deadline;
      if (wake !== MAX_NS && now + (wake - mono) < until) until = now + (wake - mono);
      if (this.idle) {
        const other = this.wakeAt?.();
        let monoUntil = mono + (until - now);
        if (other !== undefined && other < monoUntil) monoUntil = other;
        this.idle(monoUntil);
        continue;
      }
      ts[0] = until / NSEC;
      ts[1] = until % NSEC;
      const r = hostSyscall(NR_CLOCK_NANOSLEEP, clock, TIMER_ABSTIME, addr, 0);
      if (r !== 0n && r !== BigInt(-E.EINTR)) throw new SyscallError(Number(-r));
    }
  }
}

/** Host clock `clock` now, in ns. */
export function clockNs(clock: number): bigint {
  return hostClockNs(clock);
}

const STATE_KEY = "signals";

/** Host ppoll on one fd for up to `ns`: > 0 ready, 0 timed out, or -errno. */
export function pollFd(fd: number, events: number, ns: bigint): bigint {
  const pfd = new Uint8Array(8), pv = new DataView(pfd.buffer);
  pv.setInt32(0, fd, true);
  pv.setInt16(4, events, true);
  return ppoll(pfd, ns);
}

/** Host ppoll on `pfds` (struct pollfd, 8 bytes each) for up to `ns`; revents written back. */
export function ppoll(pfds: Uint8Array, ns: bigint): bigint {
  const ts = new BigInt64Array([ns / NSEC, ns % NSEC]);
  return hostSyscall(
    NR_PPOLL,
    bufferAddress(pfds),
    pfds.length / 8,
    bufferAddress(new Uint8Array(ts.buffer)),
    0,
    8,
  );
}

/** Linux's default RLIMIT_SIGPENDING-like bound on queued real-time signals per signal. */
const RT_QUEUE_MAX = 4096;
/** The first real-time signal (the kernel's; libc reserves the first two or three). */
const SIGRTMIN = 32;

/**
 * Records `info` in `queue`: a standard signal already pending is merged
 * (false), a real-time one queues another instance. True when recorded.
 */
function enqueue(queue: Map<number, SigInfo[]>, pending: bigint, info: SigInfo): boolean {
  const sig = info.signo;
  if (sig < SIGRTMIN) {
    if (pending) return false;
    queue.set(sig, [info]);
    return true;
  }
  const list = queue.get(sig) ?? [];
  if (list.length >= RT_QUEUE_MAX) return false;
  list.push(info);
  queue.set(sig, list);
  return true;
}

/** Takes the oldest instance of `sig` from `queue` (deleting the entry when it empties). */
function dequeue(queue: Map<number, SigInfo[]>, sig: number): SigInfo | undefined {
  const list = queue.get(sig);
  const info = list?.shift();
  if (!list?.length) queue.delete(sig);
  return info;
}

/** The process's signal state (created detached from any VM if the VM made none). */
export function signalsOf(p: Process): SignalState {
  let s = p.state.get(STATE_KEY) as SignalState | undefined;
  if (!s) {
    s = new SignalState(undefined, { userSp: () => 0n, armTimer: () => {} });
    p.state.set(STATE_KEY, s);
  }
  return s;
}

/** Installs the VM's signal state for `p`. */
export function attachSignals(p: Process, s: SignalState): void {
  p.state.set(STATE_KEY, s);
}

/** Writes `info` as a 128-byte siginfo_t at guest offset `o` (already checked). */
export function writeSiginfo(mem: GuestMemory, o: number, info: SigInfo): void {
  if (info.raw) {
    mem.bytes.set(info.raw, o);
    return;
  }
  const v = mem.view;
  mem.bytes.fill(0, o, o + 128);
  v.setInt32(o, info.signo, true);
  v.setInt32(o + 8, info.code, true);
  if (info.addr !== undefined) v.setBigUint64(o + 16, info.addr, true);
  else if (info.pid !== undefined) {
    v.setInt32(o + 16, info.pid, true);
    v.setUint32(o + 20, info.uid ?? 0, true);
  }
}

/** The si_overrun of a timer's siginfo. */
function overrunOf(info: SigInfo): number {
  return new DataView(info.raw!.buffer).getInt32(20, true);
}
