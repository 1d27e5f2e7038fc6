/**
 * Signal delivery on the thread being served: frames pushed on the user
 * stack, handlers entered through the guest kernel's stubs (so a call
 * served exitless needs no register write), rt_sigreturn, SA_RESTART, and
 * the faults a handler takes. The host does it all: the guest kernel,
 * which the program may overwrite, only carries registers.
 * @module
 */
import { ABI, PERCPU } from "../kernel/abi.ts";
import { regOffset } from "../kvm/structs.ts";
import { E } from "../syscalls/errno.ts";
import { ERESTARTSYS } from "../syscalls/stdio.ts";
import { formatSignal, SIG } from "./fault.ts";
import { physOf } from "./percpu.ts";
import type { Cpu } from "./threads.ts";
import { bit, defaultAction, monotonicNs, SA, SI, SIG_DFL, SS } from "../syscalls/signal.ts";
import { popFrame, pushFrame, R, savedRflags, type UserContext } from "./sigframe.ts";
import { faultInfo } from "./crash.ts";
import type { Guest } from "./guest.ts";
import { liveRegs, setRegs } from "./machine.ts";

/** The registers syscall_entry saves (struct frame in kernel.h), in memory order. */
export const SYSCALL_FRAME = [
  R.r15,
  R.r14,
  R.r13,
  R.r12,
  R.rbp,
  R.rbx,
  R.r11,
  R.r10,
  R.r9,
  R.r8,
  R.rcx,
  R.rdx,
  R.rsi,
  R.rdi,
  R.rax,
  R.rsp,
]; // deno-fmt-ignore

export const SYSCALL_FRAME_ADDR = ABI.KSTACK_TOP - SYSCALL_FRAME.length * 8;

/** rflags.TF: single-stepping. */
const TF = 0x100n;

/** How soon to retry delivering an async signal that found the vCPU in the guest kernel. */
export const RETRY_NS = 1_000_000n;

/**
 * Delivers pending signals to the running guest, interrupted at an
 * arbitrary instruction. Inside the guest kernel or an exception stub its
 * registers are not the user's: try again in a moment.
 */
export function deliverAsync(g: Guest): void {
  // After the kick's KVM_RUN the registers are in kvm_run's sync area (when KVM keeps them there).
  const live = liveRegs(g.vcpu!, g.runView!);
  const regs = new BigUint64Array(18);
  for (let i = 0; i < 18; i++) regs[i] = live.getBigUint64(i * 8, true);
  if (regs[R.rip] < BigInt(ABI.USER_MIN)) {
    // In the guest kernel (or a signal stub): tried again shortly. Another
    // thread's kernel may also report it on its way out (HC_SIGNAL).
    g.sig.retryAt = monotonicNs() + RETRY_NS;
    return;
  }
  if (deliver(g, { regs, err: 0n, trapno: 0n, cr2: 0n })) setRegs(g.vcpu!, g.runView!, regs);
}

/**
 * Acts on every pending, unblocked signal on top of `ctx` (changing it to
 * the vCPU's way into the last handler): runs handlers, applies default
 * actions. `fpu` is the FPU state of `ctx` when it is not the vCPU's own
 * (after rt_sigreturn). Returns whether `ctx` changed.
 */
export function deliver(g: Guest, ctx: UserContext, fpu?: Uint8Array): boolean {
  const s = g.sig, p = g.process!, mem = g.mem!;
  const { xsaveSize, xcr0 } = g.features!;
  let changed = false;
  let image = fpu; // what the next frame saves; undefined: the vCPU's own, XSAVEd by the guest
  let saveAt = 0n;
  for (let sig = s.next(); sig && !p.ended; sig = s.next()) {
    const info = s.take(sig);
    const act = s.action(sig);
    if (g.trace) g.traced(g.threads?.serving, formatSignal(info));
    if (act.handler === SIG_DFL) {
      // A stop signal comes out of next() only when the process can stop:
      // the process table stops serving it after this call.
      if (defaultAction(sig) === "stop") {
        s.stopSignal = sig;
        continue;
      }
      p.exit(0, sig); // ignored signals never come out of next()
      break;
    }
    const mask = s.suspendMask ?? s.mask;
    s.suspendMask = undefined;
    const fp = (act.flags & SA.RESTORER) !== 0n
      ? pushFrame(mem, s, sig, info, act, ctx, mask, image, xsaveSize, xcr0)
      : undefined;
    if (fp === undefined) {
      // Linux's force_sigsegv: a second failure (or a failing SIGSEGV) kills.
      if (sig === SIG.SIGSEGV) s.setAction(sig, { ...act, handler: SIG_DFL });
      s.force({ signo: SIG.SIGSEGV, code: SI.KERNEL });
      continue;
    }
    if (!image) saveAt = fp;
    s.mask = s.mask | act.mask | (act.flags & SA.NODEFER ? 0n : bit(sig));
    if (act.flags & SA.RESETHAND) {
      s.setAction(sig, { handler: SIG_DFL, flags: 0n, restorer: 0n, mask: 0n });
    }
    image = g.initXsave; // the handler starts with a clean FPU, as on Linux
    changed = true;
  }
  if (changed) {
    const k = g.kernel!;
    viaStub(g, ctx.regs, saveAt ? k.sigEnterSave : k.sigEnter, saveAt);
  }
  return changed;
}

/**
 * Makes `regs` enter the guest kernel's signal stub `stub` (entry.S) with
 * argument `arg`; what the stub loads last (rip, rax, rdx, r11, rcx) goes
 * to this thread's percpu slots, with the argument.
 */
export function viaStub(g: Guest, regs: BigUint64Array, stub: number, arg: bigint): void {
  const mem = g.mem!, id = g.threads?.serving.id ?? 0;
  const slot = physOf(mem, id, ABI.PERCPU_ADDR + PERCPU.sig_rip);
  [R.rip, R.rax, R.rdx, R.r11, R.rcx].forEach((r, i) =>
    mem.view.setBigUint64(slot + i * 8, regs[r], true)
  );
  mem.view.setBigUint64(physOf(mem, id, ABI.PERCPU_ADDR + PERCPU.sig_arg), arg, true);
  regs[R.rip] = BigInt(stub);
}

/**
 * For a call served exitless (its vCPU runs on): resumes `regs` through
 * the guest kernel's own return path, which pops the syscall frame, loads
 * rflags from its r11 and jumps to its rcx. Both point at a signal stub,
 * which loads the real rcx and r11 from the slots.
 */
export function toFrame(g: Guest, regs: BigUint64Array): void {
  const k = g.kernel!, stubs = [k.sigEnterSave, k.sigEnter, k.sigReturn, k.sigResume];
  if (!stubs.includes(Number(regs[R.rip]))) viaStub(g, regs, k.sigResume, 0n);
  const mem = g.mem!, id = g.threads?.serving.id ?? 0;
  const frame = physOf(mem, id, SYSCALL_FRAME_ADDR), out = regs.slice();
  out[R.rcx] = regs[R.rip];
  out[R.r11] = regs[R.rflags];
  SYSCALL_FRAME.forEach((r, i) => mem.view.setBigUint64(frame + i * 8, out[r], true));
}

/** Whether this thread's syscall frame already resumes through a signal stub (#toFrame). */
export function frameTaken(g: Guest): boolean {
  const mem = g.mem!, id = g.threads?.serving.id ?? 0;
  const frame = physOf(mem, id, SYSCALL_FRAME_ADDR);
  const rcx = mem.view.getBigUint64(frame + SYSCALL_FRAME.indexOf(R.rcx) * 8, true);
  return rcx < BigInt(ABI.USER_MIN);
}

/**
 * Whether rt_sigreturn can be served exitless: not when the context it
 * returns to is single-stepped (TF would trap in the stubs and the frame's
 * popfq) or its FPU image does not fit the scratch page (KVM_SET_XSAVE).
 */
export function sigreturnExitless(g: Guest): boolean {
  const mem = g.mem!, id = g.threads?.serving.id ?? 0;
  const frame = physOf(mem, id, SYSCALL_FRAME_ADDR);
  if (g.features!.xsaveSize > ABI.FPU_SCRATCH_SIZE) return false;
  const rsp = mem.view.getBigUint64(frame + SYSCALL_FRAME.indexOf(R.rsp) * 8, true);
  // A bad frame is fine: it ends in SIGSEGV, delivered through the frame.
  return !((savedRflags(mem, rsp) ?? 0n) & TF);
}

/**
 * Resumes `regs` with the FPU state `image` (rt_sigreturn): through the
 * sig_return stub, which loads it from the scratch page, or with
 * KVM_SET_XSAVE where the stub cannot (a single-stepped context: TF would
 * trap in the stub). Returns false for an image KVM refuses.
 */
export function restoreFpu(g: Guest, regs: BigUint64Array, image: Uint8Array): boolean {
  const { xsaveSize } = g.features!;
  if (xsaveSize <= ABI.FPU_SCRATCH_SIZE && !(regs[R.rflags] & TF)) {
    const mem = g.mem!, id = g.threads?.serving.id ?? 0;
    mem.bytes.set(image.subarray(0, xsaveSize), physOf(mem, id, ABI.FPU_SCRATCH_ADDR));
    viaStub(g, regs, g.kernel!.sigReturn, BigInt(ABI.FPU_SCRATCH_ADDR));
    return true;
  }
  try {
    g.vcpu!.setXsave(image);
    return true;
  } catch {
    return false;
  }
}

/**
 * After a host-served syscall (or one the guest kernel served that left a
 * pending signal unblocked): unwind a signal frame for rt_sigreturn, then
 * deliver. The user context is the guest kernel's syscall frame with the
 * result in rax; when it changes, the guest kernel's own return path is
 * abandoned (each syscall entry starts on a fresh kernel stack).
 */
export function afterSyscall(
  g: Guest,
  ret: bigint,
  restart = false,
  always = false,
  polled = false,
): void {
  const s = g.sig, p = g.process!, mem = g.mem!;
  if (s.nextDue() !== 0n) s.fireTimers();
  if (p.ended || (!always && !s.sigreturn && !(s.pending & ~s.mask))) return;
  const regs = new BigUint64Array(18);
  const frame = physOf(mem, g.threads?.serving.id ?? 0, SYSCALL_FRAME_ADDR);
  SYSCALL_FRAME.forEach((r, i) => regs[r] = mem.view.getBigUint64(frame + i * 8, true));
  // The frame's rax is the syscall number: a restart runs the same syscall
  // instruction (or rewritten call, also 2 bytes) again once the handler returns.
  regs[R.rip] = restart ? regs[R.rcx] - 2n : regs[R.rcx];
  if (!restart) regs[R.rax] = ret;
  regs[R.rflags] = regs[R.r11];
  let ctx: UserContext = { regs, err: 0n, trapno: 0n, cr2: 0n };
  let changed = false;
  let fpu: Uint8Array | undefined;
  if (s.sigreturn) {
    s.sigreturn = false;
    const { xsaveSize, xcr0 } = g.features!;
    const saved = popFrame(mem, regs[R.rsp], regs[R.r11], xsaveSize, xcr0);
    if (!saved) {
      s.force({ signo: SIG.SIGSEGV, code: SI.KERNEL });
    } else {
      ctx = saved.ctx;
      fpu = saved.xsave;
      s.mask = saved.mask;
      const st = saved.stack, mode = st.flags & ~SS.AUTODISARM;
      if (!s.onAltstack(ctx.regs[R.rsp])) {
        if (mode === SS.DISABLE) s.altstack = { sp: 0n, size: 0n, flags: st.flags };
        else if ((mode === 0 || mode === SS.ONSTACK) && st.size >= 2048n) s.altstack = st;
      }
      changed = true;
    }
  }
  // Served exitless, the vCPU runs on: the syscall frame carries the change.
  const apply = (r: BigUint64Array) => polled ? toFrame(g, r) : setRegs(g.vcpu!, g.runView!, r);
  if (deliver(g, ctx, fpu)) {
    apply(ctx.regs);
  } else if (fpu && !restoreFpu(g, ctx.regs, fpu)) {
    // A corrupt FPU image: SIGSEGV, on top of the context it came with.
    s.force({ signo: SIG.SIGSEGV, code: SI.KERNEL });
    if (deliver(g, ctx)) apply(ctx.regs);
  } else if (changed || always) {
    apply(ctx.regs);
  }
}

/** A parked syscall's result is set: ERESTARTSYS becomes EINTR or a restart, as after a call. */
export function afterResume(g: Guest, cpu: Cpu, ret: bigint): void {
  const restart = restarts(g, ret);
  if (ret === BigInt(-ERESTARTSYS)) {
    ret = BigInt(-E.EINTR);
    g.setRet(cpu, ret);
  }
  afterSyscall(g, ret, restart);
}

/**
 * For a call interrupted by a signal (ERESTARTSYS): whether it runs again
 * after the handler (SA_RESTART) rather than return EINTR.
 */
export function restarts(g: Guest, ret: bigint): boolean {
  if (ret !== BigInt(-ERESTARTSYS)) return false;
  const sig = g.sig.next();
  const act = g.sig.action(sig);
  return sig !== 0 && (act.flags & SA.RESTART) !== 0n && act.handler > 1n;
}

/** Delivers the signal of a user-mode fault if a handler takes it; false if none does. */
export function enterFaultHandler(
  g: Guest,
  vector: number,
  errorCode: number,
  cr2: number,
  frame: number,
  live: DataView,
): boolean {
  const s = g.sig, mem = g.mem!, v = mem.view;
  // The CPU frame is on this vCPU's own exception stack.
  const at = (va: number) => physOf(mem, g.threads?.serving.id ?? 0, va);
  const regs = new BigUint64Array(18);
  for (let i = 0; i < 18; i++) regs[i] = live.getBigUint64(i * 8, true);
  regs[R.rip] = v.getBigUint64(at(frame), true);
  regs[R.rflags] = v.getBigUint64(at(frame + 16), true);
  regs[R.rsp] = v.getBigUint64(at(frame + 24), true);
  const info = faultInfo(g, vector, errorCode, cr2, regs[R.rip]);
  const act = s.action(info.signo);
  if (act.handler <= 1n || s.mask & bit(info.signo)) return false; // SIG_DFL, SIG_IGN, blocked
  s.force(info);
  const ctx: UserContext = {
    regs,
    err: BigInt(vector === 14 ? errorCode | 4 : errorCode),
    trapno: BigInt(vector),
    cr2: vector === 14 ? BigInt(cr2) : 0n,
  };
  if (!deliver(g, ctx) || g.process!.ended) return false;
  v.setBigUint64(at(frame), regs[R.rip], true);
  v.setBigUint64(at(frame + 16), regs[R.rflags], true);
  v.setBigUint64(at(frame + 24), regs[R.rsp], true);
  // Resume at the stub's iretq with the handler's arguments, rsp at the frame's rip.
  const next = regs.slice();
  next[R.rip] = live.getBigUint64(regOffset("rip"), true);
  next[R.rflags] = live.getBigUint64(regOffset("rflags"), true);
  next[R.rsp] = BigInt(frame);
  setRegs(g.vcpu!, g.runView!, next);
  return true;
}
