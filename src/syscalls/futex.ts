/**
 * `futex` for a guest with one thread: no other thread can wake a waiter,
 * so a wait ends only by its timeout or a signal, and a wake finds nobody.
 * The value checks, `FUTEX_WAKE_OP`'s update and every error are as Linux
 * makes them, which is what glibc's and musl's locks rely on.
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import type { Process, SyscallModule } from "./registry.ts";
import { monotonicNs, signalsOf } from "./signal.ts";

const OP = {
  WAIT: 0,
  WAKE: 1,
  FD: 2,
  REQUEUE: 3,
  CMP_REQUEUE: 4,
  WAKE_OP: 5,
  WAIT_BITSET: 9,
  WAKE_BITSET: 10,
} as const;
const FUTEX_PRIVATE_FLAG = 128, FUTEX_CLOCK_REALTIME = 256;
const CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1;
const NSEC = 1_000_000_000n, MAX_NS = (1n << 63n) - 1n;

/** Reads the futex word; EINVAL if unaligned, EFAULT if not guest memory. */
function word(p: Process, addr: bigint): number {
  if (addr % 4n !== 0n) throw new SyscallError(E.EINVAL);
  return p.mem.view.getUint32(p.mem.check(addr, 4), true);
}

/** A deadline from the timeout argument: relative for WAIT, absolute for WAIT_BITSET. */
function deadline(p: Process, timeout: bigint, absolute: boolean, clock: number): bigint {
  if (timeout === 0n) return MAX_NS;
  const o = p.mem.check(timeout, 16);
  const sec = p.mem.view.getBigInt64(o, true), nsec = p.mem.view.getBigInt64(o + 8, true);
  if (sec < 0n || nsec < 0n || nsec >= NSEC) throw new SyscallError(E.EINVAL);
  const d = sec * NSEC + nsec;
  if (absolute) return d;
  const now = clock === CLOCK_REALTIME ? realtimeNs() : monotonicNs();
  return d > MAX_NS - now ? MAX_NS : now + d;
}

function realtimeNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
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

/** The futex module. */
export const futexModule: SyscallModule = {
  name: "futex",
  partial: {
    futex: "one thread: waits end by timeout or signal, wakes find no waiter; no PI or FD ops",
  },
  handlers: {
    futex({ args: [uaddr, opArg, val, timeout, uaddr2, val3], process: p }) {
      const op = Number(opArg & 0xffn) & ~FUTEX_PRIVATE_FLAG & ~FUTEX_CLOCK_REALTIME;
      const realtime = (Number(opArg) & FUTEX_CLOCK_REALTIME) !== 0;
      if (realtime && op !== OP.WAIT && op !== OP.WAIT_BITSET) throw new SyscallError(E.ENOSYS);
      const clock = realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC;
      switch (op) {
        case OP.WAIT:
        case OP.WAIT_BITSET: {
          if (op === OP.WAIT_BITSET && BigInt.asUintN(32, val3) === 0n) {
            throw new SyscallError(E.EINVAL);
          }
          const until = deadline(p, timeout, op === OP.WAIT_BITSET, clock);
          if (word(p, uaddr) !== Number(BigInt.asUintN(32, val))) {
            throw new SyscallError(E.EAGAIN);
          }
          const r = signalsOf(p).sleep(clock, until);
          if (r === "done") throw new SyscallError(E.ETIMEDOUT);
          throw new SyscallError(E.EINTR);
        }
        case OP.WAKE:
        case OP.WAKE_BITSET:
          if (op === OP.WAKE_BITSET && BigInt.asUintN(32, val3) === 0n) {
            throw new SyscallError(E.EINVAL);
          }
          if (uaddr % 4n !== 0n) throw new SyscallError(E.EINVAL);
          return 0;
        case OP.REQUEUE:
        case OP.CMP_REQUEUE:
          if (op === OP.CMP_REQUEUE && word(p, uaddr) !== Number(BigInt.asUintN(32, val3))) {
            throw new SyscallError(E.EAGAIN);
          }
          if (uaddr % 4n !== 0n || uaddr2 % 4n !== 0n) throw new SyscallError(E.EINVAL);
          return 0;
        case OP.WAKE_OP: {
          const old = word(p, uaddr2);
          const { value } = wakeOp(Number(BigInt.asUintN(32, val3)), old);
          if (uaddr % 4n !== 0n) throw new SyscallError(E.EINVAL);
          p.mem.view.setUint32(p.mem.check(uaddr2, 4), value, true);
          return 0;
        }
        default:
          throw new SyscallError(E.ENOSYS);
      }
    },
  },
};
