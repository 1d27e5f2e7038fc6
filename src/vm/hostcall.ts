/**
 * What happens when a vCPU stops: a host call (a syscall the guest kernel
 * forwards, the clock, zeroing, page protections), a CPU exception, or a
 * state that ends the run with a report. One exit costs 28-85 µs on
 * kvm_pvm, so the guest kernel serves what it can itself and the rest comes
 * here, by the doorbell or exitless (transport.ts).
 * @module
 */
import { ABI, HOSTCALL, REGION } from "../kernel/abi.ts";
import { GUEST_FORWARDS } from "../kernel/local.ts";
import { EXIT } from "../kvm/ioctls.ts";
import { libc, OsError, strerror } from "../kvm/libc.ts";
import type { VcpuFd } from "../kvm/ioctls.ts";
import { LAYOUTS } from "../kvm/structs.ts";
import { dispatch } from "../syscalls/registry.ts";
import { E, SyscallError } from "../syscalls/errno.ts";
import { ERESTARTSYS } from "../syscalls/stdio.ts";
import { formatSyscall } from "../syscalls/trace.ts";
import { SYSCALL_NUMBERS, syscallName } from "../syscalls/table.ts";
import { type CrashReport, SIG } from "./fault.ts";
import { physOf } from "./percpu.ts";
import { accessOf } from "./protect.ts";
import type { Cpu } from "./threads.ts";
import { CTL } from "./wire.ts";
import { WouldBlock } from "../syscalls/thread.ts";
import { DOORBELL_ONLY } from "./exitless.ts";
import { monotonicNs } from "../syscalls/signal.ts";
import { type GuestRegion, guestRegionAt } from "./program.ts";
import {
  afterSyscall,
  deliverAsync,
  frameTaken,
  restarts,
  RETRY_NS,
  sigreturnExitless,
} from "./deliver.ts";
import { internalError, onException } from "./crash.ts";
import { serveRewrite } from "./stubs.ts";
import type { Guest } from "./guest.ts";
import { bufferAddress, hostSyscall } from "../syscalls/host.ts";

const NR_CLOCK_GETRES = 229;
/** The host's clock_getres of CLOCK_MONOTONIC and CLOCK_MONOTONIC_COARSE, in ns (HC_CLOCK). */
let resolutions: bigint[] | undefined;

const FORWARDED = new Set(GUEST_FORWARDS.map((n) => SYSCALL_NUMBERS.get(n)!));

const NR_RT_SIGRETURN = 15;

/**
 * Serves a worker vCPU's exit on the main thread: the same paths as
 * vCPU 0's, pointed at that vCPU. A fault there ends the process (signals
 * are delivered to the main thread only).
 */
export function serveExit(g: Guest, cpu: Cpu): void {
  g.asThread(cpu, () => {
    const p = g.process!;
    const kicked = cpu.ctl !== undefined && Atomics.exchange(cpu.ctl, CTL.intr, 0) === 2;
    // A failed KVM_RUN left no exit to read: say how it failed.
    const err = cpu.runner?.error ?? 0;
    // Kicked out of KVM_RUN for a signal or a profile sample, not an exit.
    // KVM_EXIT_INTR is one too when a second kick's request overwrote the
    // first's mark before this one was served (the profiler at 2 kHz did).
    const reason = cpu.runView.getUint32(LAYOUTS.kvm_run.fields.exit_reason, true);
    if (kicked || (!err && reason === EXIT.INTR)) {
      if (cpu.sample) {
        cpu.sample = false;
        g.sampler?.sampleLive(cpu);
      }
      deliverAsync(g);
      return;
    }
    const crash = err
      ? internalError(g, `KVM_RUN failed on a thread's vCPU: ${strerror(err)}`)
      : onExit(g, cpu.runView);
    if (crash && !p.ended) {
      g.crash = crash;
      p.exit(0, crash.signal);
    }
  });
}

/**
 * KVM_RUN of `vcpu` on this thread: true after an exit, false when a signal
 * or `immediate_exit` interrupted it, or the report of a run that must end
 * because it failed, as a runner reports one (serveExit): a guest that
 * wrecked its own page tables can make it fail (ENOENT on kvm_pvm, seen
 * once in the hostile tests), and the host must hold.
 */
export function runOnce(g: Guest, vcpu: VcpuFd): boolean | CrashReport {
  try {
    return vcpu.run();
  } catch (e) {
    if (!(e instanceof OsError)) throw e;
    return internalError(g, `KVM_RUN failed: ${strerror(e.errno)}`);
  }
}

/**
 * Acts on the exit in `view` (the `struct kvm_run` of the vCPU being
 * served): a host call, a CPU exception, or a crash report for anything else.
 */
export function onExit(g: Guest, view: DataView): CrashReport | undefined {
  g.stats.exits++;
  const f = LAYOUTS.kvm_run.fields;
  const reason = view.getUint32(f.exit_reason, true);
  if (reason === EXIT.MMIO) {
    const gpa = Number(view.getBigUint64(f["mmio.phys_addr"], true));
    if (gpa === ABI.DOORBELL_GPA) {
      hostCall(g);
      return undefined;
    }
    const vector = gpa - ABI.DOORBELL_GPA - ABI.EXC_DOORBELL_OFF;
    return vector >= 0 && vector < 32
      ? onException(g, vector)
      : internalError(g, `store to unbacked guest-physical address 0x${gpa.toString(16)}`);
  }
  if (reason === EXIT.SHUTDOWN) return internalError(g, "triple fault (the vCPU shut down)");
  if (reason === EXIT.INTERNAL_ERROR) {
    const sub = view.getUint32(f["internal.suberror"], true);
    return internalError(g, `KVM internal error (suberror ${sub})`);
  }
  return internalError(g, `unexpected exit reason ${reason}`);
}

/**
 * Serves the request in the host-call block of the thread being served.
 * `polled`: it came exitless, its vCPU still runs, so no registers may
 * change; returns false if it must come again through the doorbell.
 */
export function hostCall(g: Guest, polled = false): boolean {
  const cpu = g.threads!.serving;
  const mem = g.mem!, v = mem.view, hc = physOf(mem, cpu.id, ABI.HOSTCALL_ADDR);
  let kind = v.getUint32(hc + HOSTCALL.kind, true);
  const nr = v.getUint32(hc + HOSTCALL.nr, true);
  if (kind & ABI.HC_POSTED) {
    // Posted to the poller, then the doorbell as polling stopped: once.
    kind &= ~ABI.HC_POSTED;
    const seq = v.getUint32(hc + HOSTCALL.seq, true);
    if (!polled) {
      if (v.getUint32(hc + HOSTCALL.ack, true) === seq) return true;
      v.setUint32(hc + HOSTCALL.ack, seq, true);
    }
  }
  const anyKind = [
    ABI.HC_CLOCK,
    ABI.HC_TRACE,
    ABI.HC_PROT,
    ABI.HC_MOVE,
    ABI.HC_SIGNAL,
    ABI.HC_REWRITE,
  ] as number[];
  if (polled && !anyKind.includes(kind)) {
    if (kind !== ABI.HC_SYSCALL || DOORBELL_ONLY.has(nr)) return false;
    if (nr === NR_RT_SIGRETURN && !sigreturnExitless(g)) return false;
  }
  const args = [0, 1, 2, 3, 4, 5].map((i) => v.getBigUint64(hc + HOSTCALL.arg + i * 8, true));
  let ret = 0n;
  switch (kind) {
    case ABI.HC_SYSCALL: {
      const name = syscallName(nr);
      const site = Number(v.getBigUint64(hc + HOSTCALL.site, true));
      const count = g.stats.syscalls[name] ?? 0;
      const timed = count < 64 || (count & 15) === 0;
      const t0 = timed ? performance.now() : 0;
      const threads = g.threads!;
      threads.polled = polled;
      try {
        ret = dispatch(
          g.registry,
          { nr, args, site, process: g.process! },
          g.diag,
          g.warned,
        );
      } catch (e) {
        if (e instanceof WouldBlock) return false;
        throw e;
      } finally {
        threads.polled = false;
      }
      g.stats.hostCalls++;
      g.stats.syscalls[name] = count + 1;
      g.sampler?.afterCall(cpu, name);
      if (timed) {
        const ms = (performance.now() - t0) * (count < 64 ? 1 : 16);
        g.stats.syscallMs[name] = (g.stats.syscallMs[name] ?? 0) + ms;
      }
      // Interrupted by a signal: restarted after an SA_RESTART handler, else EINTR.
      const restart = !polled && restarts(g, ret);
      if (ret === BigInt(-ERESTARTSYS)) ret = BigInt(-E.EINTR);
      // A file mmap/munmap the guest kernel forwards is traced by the kernel itself.
      const forwarded = FORWARDED.has(nr) && !g.registry.isOverridden(nr);
      if (g.trace && !g.process!.ended && !forwarded) {
        g.traced(cpu, formatSyscall(mem, nr, args, ret));
      }
      if (g.trace && g.process!.ended) g.traced(cpu, `${name}(${args[0]}) = ?`);
      // A parked call's result is written when it resumes (Threads.resume): a
      // vfork parent's block is meanwhile its child's (loan.ts).
      if (!cpu.parked) v.setBigInt64(hc + HOSTCALL.ret, BigInt.asIntN(64, ret), true);
      // Exitless, the guest kernel asks for any signal this left (HC_SIGNAL).
      // A call that parked has not returned: its signals wait for its
      // resumption (afterResume); delivering one now would build the frame
      // on a call that has not finished and block the signal meanwhile.
      // A thread that ended with this call (exit) has no signals to act on.
      if (!cpu.parked && cpu.alive) afterSyscall(g, ret, restart && !polled, false, polled);
      return true;
    }
    case ABI.HC_SIGNAL:
      v.setBigInt64(hc + HOSTCALL.ret, args[0], true);
      if (frameTaken(g)) {
        // The call before rewrote the frame (#toFrame) for a signal stub
        // not yet run: a signal raised since then goes in a moment, by a kick.
        g.sig.retryAt = monotonicNs() + RETRY_NS;
      } else {
        if (cpu.alive) afterSyscall(g, args[0], false, false, polled);
      }
      return true;
    case ABI.HC_TRACE:
      if (g.trace) {
        g.traced(cpu, formatSyscall(mem, nr, args, v.getBigInt64(hc + HOSTCALL.ret, true)));
      }
      return true;
    case ABI.HC_CLOCK: {
      const ts = new BigInt64Array(2);
      const bytes = new Uint8Array(ts.buffer);
      libc().clock_gettime(0, bytes);
      ret = ts[0] * 1000000000n + ts[1];
      libc().clock_gettime(1, bytes);
      v.setBigUint64(hc + HOSTCALL.arg, ts[0] * 1000000000n + ts[1], true);
      // For the vDSO's clock_getres: the fine clocks' resolution and the coarse ones'.
      resolutions ??= [1, 6].map((clock) => {
        hostSyscall(NR_CLOCK_GETRES, clock, bufferAddress(bytes));
        return ts[0] * 1000000000n + ts[1];
      });
      resolutions.forEach((ns, i) => v.setBigUint64(hc + HOSTCALL.arg + 8 * (i + 1), ns, true));
      break;
    }
    case ABI.HC_ZERO:
      // A range outside RAM is the guest kernel's error (or a forgery): EFAULT.
      try {
        mem.zero(Number(args[0]), Number(args[1]));
      } catch (e) {
        if (!(e instanceof SyscallError)) throw e;
        ret = BigInt(-e.errno);
      }
      break;
    case ABI.HC_PROT:
      protect(g, args[0], args[1], Number(args[2]));
      break;
    case ABI.HC_MOVE:
      ret = mem.high?.move(Number(args[0]), Number(args[1]), Number(args[2])) ? 0n : -1n;
      break;
    case ABI.HC_REWRITE: {
      const t0 = performance.now();
      ret = g.stubs ? BigInt(serveRewrite(g, Number(args[0]))) : 0n;
      g.rewriteMs += performance.now() - t0;
      break;
    }
    default:
      g.diag(`hermitux: guest kernel reported an impossible state (${kind}/${args[0]})`);
      g.process!.exit(0, SIG.SIGKILL);
  }
  v.setBigInt64(hc + HOSTCALL.ret, BigInt.asIntN(64, ret), true);
  return true;
}

/**
 * HC_PROT: the guest kernel gives [start, start + len) protection `prot`
 * (PROT_*), or PROT_RESET / PROT_UNMAP. Only page-aligned ranges of the
 * mmap area are taken (the guest is untrusted).
 */
export function protect(g: Guest, start: bigint, len: bigint, prot: number): void {
  const lo = Number(start), hi = lo + Number(len);
  const page = ABI.PAGE_SIZE;
  const access = prot & (ABI.PROT_RESET | ABI.PROT_UNMAP) ? "default" : accessOf(prot);
  const high = g.mem!.high;
  if (high?.holds(lo, hi - lo) && lo % page === 0 && hi % page === 0 && hi > lo) {
    return high.protect(lo, hi, access, (prot & ABI.PROT_UNMAP) !== 0);
  }
  if (lo % page || hi % page || lo < ABI.USER_MIN || hi > g.userEnd || hi <= lo) return;
  if (!g.prot!.apply(lo, hi, access, (prot & ABI.PROT_UNMAP) !== 0)) protFull(g);
}

/** A file mapping's pages past its file's end (the mm module's hook). */
export function pastEnd(g: Guest, start: number, end: number): void {
  // Above RAM such pages are not mapped (a touch is SIGSEGV there, not SIGBUS).
  if (g.mem!.high?.holds(start)) return g.mem!.high.protect(start, end, "none", false);
  if (!g.prot!.pastEnd(start, end)) return protFull(g);
  // The guest kernel resets the mapping's entries when it goes.
  const r = regionAt(g, start);
  if (r) g.mem!.view.setUint8(r.at + REGION.ptes, 1);
}

export function protFull(g: Guest): void {
  if (g.protWarned) return;
  g.protWarned = true;
  g.diag("hermitux: page-table pool used up: further protections are not enforced");
}

/** The guest kernel's mapping holding `addr` (mmap, not brk or the stack), if any. */
export function regionAt(g: Guest, addr: number): GuestRegion | undefined {
  return guestRegionAt(g.mem!, g.kernel!.mm, addr);
}
