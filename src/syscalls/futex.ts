/**
 * `futex`. Waiters queue by address in the host, or by file and offset for
 * a word in MAP_SHARED memory, so that processes sharing it wake each other
 * (every host call is served on the main thread, one at a time, so
 * checking the word and queueing are atomic against wakes). A waiting thread on a worker is parked (its vCPU
 * stays out of KVM_RUN, using no core) until a wake, its timeout or the end
 * of the run; the main thread's waits serve the other threads meanwhile.
 * With one thread a wait ends only by its timeout or a signal.
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import type { Process, SyscallModule } from "./registry.ts";
import { monotonicNs, signalsOf } from "./signal.ts";
import { threadsOf } from "./thread.ts";

const OP = {
  WAIT: 0,
  WAKE: 1,
  REQUEUE: 3,
  CMP_REQUEUE: 4,
  WAKE_OP: 5,
  WAIT_BITSET: 9,
  WAKE_BITSET: 10,
} as const;
const FUTEX_PRIVATE_FLAG = 128, FUTEX_CLOCK_REALTIME = 256;
const CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1;
const NSEC = 1_000_000_000n, MAX_NS = (1n << 63n) - 1n;

interface Waiter {
  tid: number;
  bitset: number;
  woken: boolean;
  /** Continues a parked waiter (undefined for the main thread's own wait). */
  wake?: () => void;
}

const QUEUES_KEY = "futex.queues";

/**
 * A futex's key: its address, or for a word in MAP_SHARED memory that
 * other processes may map ("dev:ino:offset", src/vm/shared.ts) a key they
 * share, unless the call says FUTEX_PRIVATE_FLAG.
 */
type Key = bigint | string;

/** Waiters on shared words, of every process of every run. */
const SHARED = new Map<Key, Waiter[]>();

function queues(p: Process): Map<Key, Waiter[]> {
  let q = p.state.get(QUEUES_KEY) as Map<Key, Waiter[]> | undefined;
  if (!q) p.state.set(QUEUES_KEY, q = new Map());
  return q;
}

/** The queues `key` is in. */
const queuesOf = (p: Process, key: Key) => typeof key === "string" ? SHARED : queues(p);

/** The key of the word at `addr` (see Key). */
function keyOf(p: Process, addr: bigint, priv: boolean): Key {
  return priv ? addr : p.mem.overlays.keyAt(Number(addr)) ?? addr;
}

/** Takes `w` off whichever queue holds it (a requeue may have moved it). */
function dequeue(p: Process, w: Waiter): void {
  for (const q of [queues(p), SHARED]) {
    for (const [key, list] of q) {
      const i = list.indexOf(w);
      if (i < 0) continue;
      list.splice(i, 1);
      if (!list.length) q.delete(key);
      return;
    }
  }
}

/** Reads the futex word; EINVAL if unaligned, EFAULT if not guest memory. */
function word(p: Process, addr: bigint): number {
  if (addr % 4n !== 0n) throw new SyscallError(E.EINVAL);
  return p.mem.view.getUint32(p.mem.check(addr, 4), true);
}

function realtimeNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/** The timeout argument as [deadline on `clock`, deadline on the monotonic clock]. */
function deadline(p: Process, timeout: bigint, absolute: boolean, clock: number): bigint[] {
  if (timeout === 0n) return [MAX_NS, MAX_NS];
  const o = p.mem.check(timeout, 16);
  const sec = p.mem.view.getBigInt64(o, true), nsec = p.mem.view.getBigInt64(o + 8, true);
  if (sec < 0n || nsec < 0n || nsec >= NSEC) throw new SyscallError(E.EINVAL);
  const d = sec * NSEC + nsec;
  const now = clock === CLOCK_REALTIME ? realtimeNs() : monotonicNs();
  const at = absolute ? d : (d > MAX_NS - now ? MAX_NS : now + d);
  const mono = monotonicNs();
  return [at, at === MAX_NS ? MAX_NS : mono + (at > now ? at - now : 0n)];
}

/**
 * Wakes up to `n` waiters on `addr` (or on key `key`) whose bitset meets
 * `bitset`; how many woke.
 */
export function futexWake(
  p: Process,
  addr: bigint,
  n: number,
  bitset: number,
  key: Key = keyOf(p, addr, false),
): number {
  const q = queuesOf(p, key), list = q.get(key);
  let woke = 0;
  while (list && woke < n) {
    const i = list.findIndex((w) => (w.bitset & bitset) !== 0);
    if (i < 0) break;
    const [w] = list.splice(i, 1);
    w.woken = true;
    w.wake?.();
    woke++;
  }
  if (list && !list.length) q.delete(key);
  return woke;
}

function wait(
  p: Process,
  addr: bigint,
  val: bigint,
  timeout: bigint,
  bitset: number,
  absolute: boolean,
  clock: number,
  key: Key,
): number {
  const [until, monoUntil] = deadline(p, timeout, absolute, clock);
  if (word(p, addr) !== Number(BigInt.asUintN(32, val))) throw new SyscallError(E.EAGAIN);
  const t = threadsOf(p);
  const w: Waiter = { tid: t?.current ?? p.pid, bitset, woken: false };
  const q = queuesOf(p, key);
  if (!q.has(key)) q.set(key, []);
  q.get(key)!.push(w);
  if (t && !t.onMain) {
    const tid = t.current;
    w.wake = () => t.resume(tid, 0n);
    t.park(monoUntil, () => {
      dequeue(p, w);
      t.resume(tid, BigInt(-E.ETIMEDOUT));
    }, () => {
      dequeue(p, w);
      t.resume(tid, BigInt(-E.EINTR));
    });
    return 0; // not seen: the thread is parked
  }
  const r = signalsOf(p).sleep(clock, until, () => w.woken);
  if (w.woken) return 0;
  dequeue(p, w);
  throw new SyscallError(r === "done" ? E.ETIMEDOUT : E.EINTR);
}

/** FUTEX_WAKE_OP's encoded operation on `old`, and its comparison. */
function wakeOp(encoded: number, old: number): { value: number; cmp: boolean } {
  const op = (encoded >>> 28) & 7, shift = (encoded >>> 28) & 8;
  const cmp = (encoded >>> 24) & 15;
  let oparg = (encoded << 8) >> 20; // sign-extended 12 bits
  const cmparg = (encoded << 20) >> 20;
  if (shift) oparg = oparg < 0 || oparg > 31 ? 0 : 1 << oparg;
  const ops = [
    () => oparg, // SET
    () => old + oparg, // ADD
    () => old | oparg, // OR
    () => old & ~oparg, // ANDN
    () => old ^ oparg, // XOR
  ];
  if (op >= ops.length) throw new SyscallError(E.ENOSYS);
  const o = old | 0;
  const cmps = [
    () => o === cmparg,
    () => o !== cmparg,
    () => o < cmparg,
    () => o >= cmparg,
    () => o <= cmparg,
    () => o > cmparg,
  ];
  if (cmp >= cmps.length) throw new SyscallError(E.ENOSYS);
  return { value: ops[op]() >>> 0, cmp: cmps[cmp]() };
}

const u32 = (v: bigint) => Number(BigInt.asUintN(32, v));
/** A count argument: Linux treats a negative int as "all". */
const count = (v: bigint) => {
  const n = Number(BigInt.asIntN(32, v));
  return n < 0 ? 0x7fffffff : n;
};

/** The futex module. */
export const futexModule: SyscallModule = {
  name: "futex",
  partial: {
    futex: "no PI, FD or LOCK ops; a waiting thread is not interrupted by a signal on another",
  },
  handlers: {
    futex({ args: [uaddr, opArg, val, timeout, uaddr2, val3], process: p }) {
      const op = Number(opArg & 0xffn) & ~FUTEX_PRIVATE_FLAG & ~FUTEX_CLOCK_REALTIME;
      const priv = (Number(opArg) & FUTEX_PRIVATE_FLAG) !== 0;
      const key = (addr: bigint) => keyOf(p, addr, priv);
      const realtime = (Number(opArg) & FUTEX_CLOCK_REALTIME) !== 0;
      if (realtime && op !== OP.WAIT && op !== OP.WAIT_BITSET) throw new SyscallError(E.ENOSYS);
      const clock = realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC;
      switch (op) {
        case OP.WAIT:
          return wait(p, uaddr, val, timeout, 0xffffffff, false, clock, key(uaddr));
        case OP.WAIT_BITSET:
          if (u32(val3) === 0) throw new SyscallError(E.EINVAL);
          return wait(p, uaddr, val, timeout, u32(val3), true, clock, key(uaddr));
        case OP.WAKE:
        case OP.WAKE_BITSET: {
          const bits = op === OP.WAKE_BITSET ? u32(val3) : 0xffffffff;
          if (bits === 0) throw new SyscallError(E.EINVAL);
          if (uaddr % 4n !== 0n) throw new SyscallError(E.EINVAL);
          return futexWake(p, uaddr, count(val), bits, key(uaddr));
        }
        case OP.REQUEUE:
        case OP.CMP_REQUEUE: {
          if (uaddr % 4n !== 0n || uaddr2 % 4n !== 0n) throw new SyscallError(E.EINVAL);
          if (op === OP.CMP_REQUEUE && word(p, uaddr) !== u32(val3)) {
            throw new SyscallError(E.EAGAIN);
          }
          const k1 = key(uaddr), k2 = key(uaddr2);
          const woke = futexWake(p, uaddr, count(val), 0xffffffff, k1);
          // val2 (the timeout slot) is how many more to move to uaddr2.
          const q1 = queuesOf(p, k1), q2 = queuesOf(p, k2), from = q1.get(k1) ?? [];
          const moved = from.splice(0, count(timeout));
          if (!from.length) q1.delete(k1);
          if (moved.length) {
            if (!q2.has(k2)) q2.set(k2, []);
            q2.get(k2)!.push(...moved);
          }
          return woke + moved.length;
        }
        case OP.WAKE_OP: {
          const old = word(p, uaddr2);
          const { value, cmp } = wakeOp(u32(val3), old);
          if (uaddr % 4n !== 0n) throw new SyscallError(E.EINVAL);
          p.mem.view.setUint32(p.mem.check(uaddr2, 4), value, true);
          let woke = futexWake(p, uaddr, count(val), 0xffffffff, key(uaddr));
          if (cmp) woke += futexWake(p, uaddr2, count(timeout), 0xffffffff, key(uaddr2));
          return woke;
        }
        default:
          throw new SyscallError(E.ENOSYS);
      }
    },
  },
};
