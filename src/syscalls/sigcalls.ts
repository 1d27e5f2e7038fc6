/**
 * The signal syscalls: dispositions (rt_sigaction), signals to oneself and
 * one's threads (kill, tkill, tgkill, rt_sigqueueinfo), the alternate
 * stack, and waiting for signals (pause, rt_sigsuspend, rt_sigtimedwait).
 * The state they act on, and delivery's bookkeeping, are signal.ts's;
 * timers are timers.ts's.
 * @module
 */
import { threadsOf } from "./thread.ts";
import { E, SyscallError } from "./errno.ts";
import type { Process, SyscallModule } from "./registry.ts";
import {
  bit,
  monotonicNs,
  SI,
  type SigAction,
  signalsOf,
  SIGNO,
  SS,
  writeSiginfo,
} from "./signal.ts";

const NSEC = 1_000_000_000n;
const MAX_NS = (1n << 63n) - 1n;
const NSIG = 64;
const MINSIGSTKSZ = 2048n;
const UNBLOCKABLE = (1n << 8n) | (1n << 18n); // SIGKILL, SIGSTOP
const CLOCK_MONOTONIC = 1;

const i32 = (v: bigint) => Number(BigInt.asIntN(32, v));

/** Whether `sig` is a signal number (1..64). */
export function validSignal(sig: number): boolean {
  return sig >= 1 && sig <= NSIG;
}

/** Whether `tid` names one of the guest's live threads. */
export function isThread(p: Process, tid: number): boolean {
  return tid === p.pid || (threadsOf(p)?.has(tid) ?? false);
}

/** Raises `sig` for thread `tid` (tkill, tgkill; 0: the existence check). */
function sendThread(p: Process, tid: number, sig: number): number {
  if (sig < 0 || sig > NSIG) throw new SyscallError(E.EINVAL);
  if (sig === 0) return 0;
  signalsOf(p).raiseOn(tid, { signo: sig, code: SI.TKILL, pid: p.pid, uid: Deno.uid() ?? 0 });
  return 0;
}

/** Raises `sig` from kill/tkill/tgkill at the process itself (0: the existence check). */
function sendSelf(p: Process, sig: number, code: number): number {
  if (sig < 0 || sig > NSIG) throw new SyscallError(E.EINVAL);
  if (sig === 0) return 0;
  signalsOf(p).raise({ signo: sig, code, pid: p.pid, uid: Deno.uid() ?? 0 });
  return 0;
}

function readSigset(p: Process, addr: bigint, size: bigint): bigint {
  if (size !== 8n) throw new SyscallError(E.EINVAL);
  return p.mem.u64(addr);
}

/** Signal dispositions, sending signals to oneself and waiting for them (timers: timers.ts). */
export const signalModule: SyscallModule = {
  name: "signal",
  partial: {
    kill: "to the guest itself only (its pid, 0 or its own group); other pids ESRCH",
    tkill: "to any of the guest's threads",
    tgkill: "to any of the guest's threads",
    rt_sigqueueinfo: "to the guest itself only; others ESRCH",
    rt_sigtimedwait:
      "wakes for signals already pending or raised by ITIMER_REAL, a POSIX timer or another thread",
  },
  handlers: {
    rt_sigaction({ args: [sig, act, oact, size], process: p }) {
      if (size !== 8n) throw new SyscallError(E.EINVAL);
      let next: SigAction | undefined;
      if (act !== 0n) {
        const o = p.mem.check(act, 32), v = p.mem.view;
        next = {
          handler: v.getBigUint64(o, true),
          flags: v.getBigUint64(o + 8, true) & 0xffffffffn,
          restorer: v.getBigUint64(o + 16, true),
          mask: v.getBigUint64(o + 24, true) & ~UNBLOCKABLE,
        };
      }
      const n = i32(sig);
      if (!validSignal(n) || (next && (n === SIGNO.SIGKILL || n === SIGNO.SIGSTOP))) {
        throw new SyscallError(E.EINVAL);
      }
      const s = signalsOf(p);
      if (oact !== 0n) {
        const o = p.mem.check(oact, 32), v = p.mem.view, a = s.action(n);
        v.setBigUint64(o, a.handler, true);
        v.setBigUint64(o + 8, a.flags, true);
        v.setBigUint64(o + 16, a.restorer, true);
        v.setBigUint64(o + 24, a.mask, true);
      }
      if (next) {
        s.setAction(n, next);
        if (s.ignored(n)) s.discard(n);
      }
      return 0;
    },
    rt_sigpending({ args: [set, size], process: p }) {
      if (size > 8n) throw new SyscallError(E.EINVAL);
      const s = signalsOf(p);
      const bytes = new Uint8Array(new BigUint64Array([s.pending & s.mask]).buffer);
      p.mem.slice(set, Number(size)).set(bytes.subarray(0, Number(size)));
      return 0;
    },
    kill({ args: [pid, sig], process: p }) {
      const n = i32(pid);
      // Only the guest exists: itself, its group (0, -pid); -1 means everyone else.
      if (n !== p.pid && n !== 0 && n !== -p.pid) throw new SyscallError(E.ESRCH);
      return sendSelf(p, i32(sig), SI.USER);
    },
    tkill({ args: [tid, sig], process: p }) {
      if (i32(tid) <= 0) throw new SyscallError(E.EINVAL);
      if (!isThread(p, i32(tid))) throw new SyscallError(E.ESRCH);
      return sendThread(p, i32(tid), i32(sig));
    },
    tgkill({ args: [tgid, tid, sig], process: p }) {
      if (i32(tid) <= 0 || i32(tgid) <= 0) throw new SyscallError(E.EINVAL);
      if (!isThread(p, i32(tid)) || i32(tgid) !== p.pid) throw new SyscallError(E.ESRCH);
      return sendThread(p, i32(tid), i32(sig));
    },
    rt_sigqueueinfo({ args: [pid, sig, uinfo], process: p }) {
      const raw = p.mem.slice(uinfo, 128).slice();
      if (i32(pid) !== p.pid) throw new SyscallError(E.ESRCH);
      const n = i32(sig);
      if (n < 0 || n > NSIG) throw new SyscallError(E.EINVAL);
      if (n === 0) return 0;
      const code = new DataView(raw.buffer).getInt32(8, true);
      new DataView(raw.buffer).setInt32(0, n, true);
      signalsOf(p).raise({ signo: n, code, raw });
      return 0;
    },
    sigaltstack({ args: [ss, oss], process: p }) {
      const s = signalsOf(p);
      let next: { sp: bigint; flags: number; size: bigint } | undefined;
      if (ss !== 0n) {
        const o = p.mem.check(ss, 24), v = p.mem.view;
        next = {
          sp: v.getBigUint64(o, true),
          flags: v.getInt32(o + 8, true),
          size: v.getBigUint64(o + 16, true),
        };
      }
      const sp = s.host.userSp();
      const old = {
        sp: s.altstack.sp,
        size: s.altstack.size,
        flags: s.altstackFlags(sp) | (s.altstack.flags & SS.AUTODISARM),
      };
      if (next) {
        if (s.onAltstack(sp)) throw new SyscallError(E.EPERM);
        const mode = next.flags & ~SS.AUTODISARM;
        if (mode !== SS.DISABLE && mode !== SS.ONSTACK && mode !== 0) {
          throw new SyscallError(E.EINVAL);
        }
        if (mode === SS.DISABLE) s.altstack = { sp: 0n, size: 0n, flags: next.flags };
        else {
          if (next.size < MINSIGSTKSZ) throw new SyscallError(E.ENOMEM);
          s.altstack = next;
        }
      }
      if (oss !== 0n) {
        const o = p.mem.check(oss, 24), v = p.mem.view;
        v.setBigUint64(o, old.sp, true);
        v.setInt32(o + 8, old.flags, true);
        v.setInt32(o + 12, 0, true);
        v.setBigUint64(o + 16, old.size, true);
      }
      return 0;
    },
    rt_sigreturn({ process: p }) {
      signalsOf(p).sigreturn = true;
      return 0;
    },
    pause({ process: p }) {
      signalsOf(p).sleep(CLOCK_MONOTONIC, MAX_NS);
      return -E.EINTR;
    },
    rt_sigsuspend({ args: [set, size], process: p }) {
      const mask = readSigset(p, set, size);
      const s = signalsOf(p);
      const old = s.mask;
      s.mask = mask;
      // The frame of the signal that ends the wait saves (and its return
      // restores) `old`; a parked thread keeps `mask` until then.
      s.suspendMask = old;
      const r = s.sleep(CLOCK_MONOTONIC, MAX_NS);
      if (r !== "signal" && r !== "parked") {
        s.mask = old;
        s.suspendMask = undefined;
      }
      return -E.EINTR;
    },
    rt_sigtimedwait({ args: [set, info, timeout, size], process: p }) {
      const want = readSigset(p, set, size) & ~UNBLOCKABLE;
      let deadline = MAX_NS;
      if (timeout !== 0n) {
        const o = p.mem.check(timeout, 16);
        const sec = p.mem.view.getBigInt64(o, true), nsec = p.mem.view.getBigInt64(o + 8, true);
        if (sec < 0n || nsec < 0n || nsec >= NSEC) throw new SyscallError(E.EINVAL);
        const d = sec * NSEC + nsec, now = monotonicNs();
        deadline = d > MAX_NS - now ? MAX_NS : now + d;
      }
      const s = signalsOf(p);
      // The waited-for signals count as unblocked while waiting (as Linux does).
      const blocked = s.mask;
      s.mask = blocked & ~want;
      const ready = () => (s.pending & want) !== 0n;
      const accept = () => {
        let sig = 1;
        while (!(s.pending & want & bit(sig))) sig++;
        const si = s.take(sig);
        if (info !== 0n) writeSiginfo(p.mem, p.mem.check(info, 128), si);
        return sig;
      };
      let r: "done" | "signal" | "timeout" | "parked";
      try {
        r = s.sleep(CLOCK_MONOTONIC, deadline, ready, {
          // Parked, the mask stays open until the thread runs again.
          timeout: () => (s.mask = blocked, BigInt(-E.EAGAIN)),
          wake: () => (s.mask = blocked, BigInt(ready() ? accept() : -E.EINTR)),
        });
      } finally {
        if (r! !== "parked") s.mask = blocked;
      }
      if (r === "done" && ready()) return accept();
      return r === "done" ? -E.EAGAIN : -E.EINTR;
    },
  },
};
