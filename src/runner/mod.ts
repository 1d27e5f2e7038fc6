/**
 * vCPU runner threads: a host thread per vCPU that only calls KVM_RUN and
 * hands each exit to the main thread (runner.c, machine code started with
 * `pthread_create`). A runner outlives its vCPU: idle, it is given the next
 * vCPU of any process that needs one ({@linkcode Runner.start}). The two sides talk through a `struct runner` in host
 * memory: its words are futexes, so the main thread waits and wakes with
 * the `futex` syscall rather than `Atomics` (the memory is not a
 * SharedArrayBuffer).
 * @module
 */
import { libc, OsError } from "../kvm/libc.ts";
import { hostSyscall } from "../syscalls/host.ts";
import { RUNNER_CODE } from "./code.ts";
import type { VcpuThread } from "../kvm/ioctls.ts";

/** Byte offsets in `struct runner` (runner.c). */
export const RUNNER = {
  state: 0,
  tid: 4,
  done: 8,
  intr: 12,
  fd: 16,
  pid: 20,
  run: 24,
  door: 32,
  kickRun: 40,
  kickTid: 48,
  err: 52,
  callReq: 56,
  callArg: 64,
  callRet: 72,
  callBack: 80,
  wakeFd: 84,
  rest: 88,
  laterN: 92,
  later: 96,
  size: 160,
} as const;

const PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;
const NR_FUTEX = 202, FUTEX_WAIT_PRIVATE = 128, FUTEX_WAKE_PRIVATE = 129;
const PAGE = 4096n;

let code: Deno.PointerObject | undefined;

/**
 * Starts a detached host thread at `code` (machine code of ours, taking
 * one pointer) with `arg`; 0, or pthread_create's error.
 */
export function startThread(code: Deno.PointerObject, arg: bigint): number {
  const thread = new BigUint64Array(1);
  const rc = libc().pthread_create(
    new Uint8Array(thread.buffer),
    null,
    code,
    Deno.UnsafePointer.create(arg),
  );
  if (rc === 0) libc().pthread_detach(thread[0]);
  return rc;
}

/** Fresh zeroed host pages, for words shared with runner threads. */
export function sharedPage(): { addr: bigint; words: Int32Array; view: DataView } {
  const p = libc().mmap(null, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n);
  if (!p || Deno.UnsafePointer.value(p) === 0xffffffffffffffffn) throw new OsError("mmap", 12);
  const buf = Deno.UnsafePointerView.getArrayBuffer(p, Number(PAGE));
  return { addr: Deno.UnsafePointer.value(p), words: new Int32Array(buf), view: new DataView(buf) };
}

/**
 * Machine code of ours (one of code.ts's base64 blobs, built by build.sh)
 * copied into fresh pages that are then made executable and read-only.
 */
export function codePages(base64: string): Deno.PointerObject {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const len = BigInt(Math.ceil(bytes.length / Number(PAGE)) * Number(PAGE));
  const p = libc().mmap(null, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n);
  if (!p || Deno.UnsafePointer.value(p) === 0xffffffffffffffffn) throw new OsError("mmap", 12);
  new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, bytes.length)).set(bytes);
  libc().mprotect(p, len, PROT_READ | PROT_EXEC);
  return p;
}

function entry(): Deno.PointerObject {
  return code ??= codePages(RUNNER_CODE);
}

const STATE_IDLE = 0, STATE_RUN = 1, STATE_EXITED = 2, STATE_QUIT = 3, STATE_CALL = 4;

/**
 * Runner threads whose vCPU has ended, idle, for the next vCPU that needs
 * one: a thread's start and end cost a fork or an execve ~0.2-0.4 ms of
 * the main thread's time here (pthread_create, the wait for its id, the
 * wait for it to leave).
 */
const idle: Runner[] = [];
/** At most this many idle runner threads are kept. */
const MAX_IDLE = 4;

/** Runner threads this process has started, and how often an idle one was given a vCPU instead. */
export const runnerCounts: { started: number; reused: number } = { started: 0, reused: 0 };

/** Wakes every thread waiting on the futex word at host address `addr`. */
export function futexWake(addr: bigint): void {
  hostSyscall(NR_FUTEX, addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, 0);
}

/**
 * Waits while the word at `addr` holds `value`, up to `ms` (undefined: no
 * limit); returns early on a wake, a signal or a changed value.
 */
export function futexWait(addr: bigint, value: number, ms?: number): void {
  let ts = 0n;
  let t: BigInt64Array | undefined;
  if (ms !== undefined) {
    const ns = BigInt(Math.max(0, Math.round(ms * 1e6)));
    t = new BigInt64Array([ns / 1_000_000_000n, ns % 1_000_000_000n]);
    ts = Deno.UnsafePointer.value(Deno.UnsafePointer.of(t));
  }
  hostSyscall(NR_FUTEX, addr, FUTEX_WAIT_PRIVATE, value, ts);
  t?.fill(0n); // keeps `t` alive across the call
}

/** What a runner needs to start. */
export interface RunnerInit {
  /** The vCPU's fd. */
  vcpuFd: number;
  /** Its `struct kvm_run`. */
  runAddr: bigint;
  /** A word every runner bumps and wakes at each exit. */
  door: bigint;
  /** A vCPU the main thread runs itself, kicked out of KVM_RUN at each exit (0n: none). */
  kickRun: bigint;
  /** The main thread's id (0: no kick). */
  kickTid: number;
  /** An eventfd to write at each exit as well (the main thread may sleep on it). */
  wakeFd?: number;
}

const EMPTY = new Uint8Array(0);

/** At most this many ioctls wait for a runner's next KVM_RUN (runner.c's `later`). */
const MAX_LATER = 4;

/** One runner thread and its `struct runner`; its vCPU's ioctls go through it. */
export class Runner implements VcpuThread {
  /** Host address of its `struct runner`. */
  readonly addr: bigint;
  /** Its words: `state`, `tid`, `done`, `intr` at indexes 0–3 (`CTL` in wire.ts). */
  readonly ctl: Int32Array;
  readonly #view: DataView;
  /** The buffers of ioctls queued by {@linkcode later}, alive until made. */
  #kept: Uint8Array[] = [];

  private constructor(init: RunnerInit) {
    const page = sharedPage();
    this.addr = page.addr;
    this.ctl = page.words;
    this.#view = page.view;
    this.#point(init);
    this.#view.setInt32(RUNNER.pid, Deno.pid, true);
    const rc = startThread(entry(), this.addr);
    if (rc !== 0) throw new OsError("pthread_create", rc);
  }

  /**
   * A runner for the vCPU `init` names, idle until its state is set to
   * run: a thread another vCPU left ({@linkcode release}), else a new one.
   */
  static start(init: RunnerInit): Runner {
    for (let r = idle.pop(); r; r = idle.pop()) {
      // It must be past its last exit's door and eventfd before they change.
      if (!r.#resting()) continue; // stuck: left alone, not reused
      r.#view.setInt32(RUNNER.err, 0, true);
      r.#view.setInt32(RUNNER.laterN, 0, true); // the last vCPU's, never made
      r.#kept = [];
      Atomics.store(r.ctl, RUNNER.intr / 4, 0);
      r.#point(init);
      runnerCounts.reused++;
      return r;
    }
    runnerCounts.started++;
    return new Runner(init);
  }

  /**
   * Gets the thread out of KVM_RUN and keeps it out, still this vCPU's
   * (a vfork child's end: its parent runs on next); `kick` gets it out of
   * a KVM_RUN under way. False if it did not come out within a second.
   */
  halt(kick: () => void): boolean {
    this.#settle();
    for (;;) {
      const s = Atomics.load(this.ctl, 0);
      if (s !== STATE_RUN) return true; // an exit waits, or idle: out already
      if (Atomics.compareExchange(this.ctl, 0, STATE_RUN, STATE_IDLE) === STATE_RUN) break;
    }
    this.wake();
    kick();
    return this.#resting();
  }

  /** Waits up to a second for the thread to idle past its last vCPU's use (`rest`); whether it did. */
  #resting(): boolean {
    const rest = RUNNER.rest / 4, until = performance.now() + 1000;
    while (Atomics.load(this.ctl, rest) !== 1 && performance.now() < until) this.wait(rest, 0, 10);
    return Atomics.load(this.ctl, rest) === 1;
  }

  /** Tells an idle thread to leave (one that cannot go to the idle ones: {@linkcode release}). */
  quit(): void {
    Atomics.store(this.ctl, 0, STATE_QUIT);
    this.wake();
  }

  /** Writes what the thread runs and tells at each exit. */
  #point(init: RunnerInit): void {
    const v = this.#view;
    v.setInt32(RUNNER.fd, init.vcpuFd, true);
    v.setBigUint64(RUNNER.run, init.runAddr, true);
    v.setBigUint64(RUNNER.door, init.door, true);
    v.setBigUint64(RUNNER.kickRun, init.kickRun, true);
    v.setInt32(RUNNER.kickTid, init.kickTid, true);
    v.setInt32(RUNNER.wakeFd, init.wakeFd ?? -1, true);
  }

  /**
   * Lets the thread go idle for another vCPU ({@linkcode start}) when its
   * own is out of KVM_RUN for good: its exit waits to be served, or it
   * never ran. Returns false otherwise (or when enough threads are idle):
   * the caller stops it. Neither this object nor its `ctl` may be used
   * afterwards.
   */
  release(): boolean {
    this.#settle();
    if (idle.length >= MAX_IDLE) return false;
    for (;;) {
      const s = Atomics.load(this.ctl, 0);
      // Only this thread moves a state from RUN (to EXITED); from EXITED or IDLE only we do.
      if (s !== STATE_EXITED && s !== STATE_IDLE) return false;
      if (Atomics.compareExchange(this.ctl, 0, s, STATE_IDLE) === s) break;
    }
    this.wake();
    idle.push(this);
    return true;
  }

  /**
   * Makes vCPU ioctl `req` with argument `arg` on the runner's thread (kvm_pvm
   * keeps a vCPU's FPU state with the thread that runs it); the runner must
   * be out of KVM_RUN (idle, or its exit being served). Returns its result or
   * -errno.
   */
  call(req: number, arg: bigint): number {
    this.begin(req, arg, EMPTY);
    return this.#settle();
  }

  /**
   * Starts what {@linkcode call} does and returns at once: the main
   * thread goes on (a fork copies memory) while the runner's thread wakes
   * and makes the ioctl. The result waits in the returned function; any
   * other call or queued ioctl waits for it first. `keep` holds the
   * argument until then.
   */
  begin(req: number, arg: bigint, keep: Uint8Array): () => number {
    this.#settle();
    const v = this.#view, back = Atomics.load(this.ctl, 0);
    if (back === STATE_RUN || back === STATE_CALL) {
      throw new Error("hermitux: a vCPU ioctl while the vCPU runs");
    }
    v.setBigInt64(RUNNER.callReq, BigInt(req), true);
    v.setBigUint64(RUNNER.callArg, arg, true);
    v.setInt32(RUNNER.callBack, back, true);
    this.#begun = keep;
    Atomics.store(this.ctl, 0, STATE_CALL);
    this.wake();
    return () => this.#settle();
  }

  /** The argument of a call begun and not yet waited for ({@linkcode begin}). */
  #begun?: Uint8Array;

  /** Waits for a call {@linkcode begin} started, if any, before anything else reaches the thread. */
  settle(): void {
    this.#settle();
  }

  /** Waits for the call begun, if any; its result (0 if none). */
  #settle(): number {
    if (!this.#begun) return 0;
    while (Atomics.load(this.ctl, 0) === STATE_CALL) {
      futexWait(this.addr + BigInt(RUNNER.state), STATE_CALL, 100);
    }
    this.#begun = undefined;
    return Number(this.#view.getBigInt64(RUNNER.callRet, true));
  }

  /**
   * Queues vCPU ioctl `req` (argument `arg`, in `keep`) for the runner's
   * thread to make before the vCPU next runs (or before the next
   * {@linkcode call}), with no round trip now; false when the queue is
   * full (make it now). The runner must be out of KVM_RUN. A failure
   * shows as a failed KVM_RUN ({@linkcode error}).
   */
  later(req: number, arg: bigint, keep: Uint8Array): boolean {
    this.#settle();
    const v = this.#view, s = Atomics.load(this.ctl, 0);
    if (s === STATE_RUN || s === STATE_CALL) {
      throw new Error("hermitux: a vCPU ioctl while the vCPU runs");
    }
    const n = v.getInt32(RUNNER.laterN, true);
    if (n === 0) this.#kept = [];
    if (n >= MAX_LATER) return false;
    v.setBigInt64(RUNNER.later + n * 16, BigInt(req), true);
    v.setBigUint64(RUNNER.later + n * 16 + 8, arg, true);
    v.setInt32(RUNNER.laterN, n + 1, true);
    this.#kept.push(keep);
    return true;
  }

  /**
   * Points the runner's kick at another vCPU the main thread runs itself
   * (0n and 0: none), as when vCPU 0 moves to a runner of its own.
   */
  setKick(run: bigint, tid: number): void {
    // The runner reads the tid first, then the kvm_run, and needs both: the
    // tid goes last when a kick is set, first when it is taken away.
    if (tid === 0) Atomics.store(this.ctl, RUNNER.kickTid / 4, 0);
    this.#view.setBigUint64(RUNNER.kickRun, run, true);
    Atomics.store(this.ctl, RUNNER.kickTid / 4, tid);
  }

  /** Makes the runner write eventfd `fd` at each exit (-1: none). */
  setWakeFd(fd: number): void {
    Atomics.store(this.ctl, RUNNER.wakeFd / 4, fd);
  }

  /** Wakes the runner after its state changed. */
  wake(): void {
    futexWake(this.addr + BigInt(RUNNER.state));
  }

  /** The errno of its last failed KVM_RUN (0 if none). */
  get error(): number {
    return -this.#view.getInt32(RUNNER.err, true);
  }

  /** Frees its `struct runner` once the thread has left (else it stays, for the thread). */
  dispose(): void {
    if (Atomics.load(this.ctl, RUNNER.done / 4) !== 1) return;
    libc().munmap(Deno.UnsafePointer.create(this.addr), PAGE);
  }

  /** Waits up to `ms` for word `i` of `ctl` to leave `value`. */
  wait(i: number, value: number, ms?: number): void {
    futexWait(this.addr + BigInt(i * 4), value, ms);
  }
}
