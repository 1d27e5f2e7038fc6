/**
 * The Linux x86-64 signal frame (`struct rt_sigframe`), built on the guest's
 * stack when a handler is entered and read back by `rt_sigreturn`:
 *
 * ```
 * frame+0    pretcode (sa_restorer: the handler's return address)
 * frame+8    struct ucontext: uc_flags, uc_link, uc_stack, uc_mcontext
 *            (struct sigcontext: the registers), uc_sigmask
 * frame+312  siginfo_t (128 bytes)
 * fpstate    the XSAVE image (64-byte aligned, above the frame), with
 *            Linux's _fpx_sw_bytes in its software-reserved bytes
 * ```
 *
 * At handler entry rsp = frame and (rsp + 8) is 16-byte aligned, as after
 * a call. Pure functions over guest memory: the VM moves the registers.
 * @module
 */
import {
  type SigAction,
  type SigInfo,
  type SignalState,
  writeSiginfo,
} from "../syscalls/signal.ts";
import { REG_NAMES } from "../kvm/structs.ts";
import type { GuestMemory } from "./memory.ts";

/** Index of each register in a `struct kvm_regs` as a BigUint64Array. */
export const R = Object.fromEntries(REG_NAMES.map((n, i) => [n, i])) as Record<
  typeof REG_NAMES[number],
  number
>;

/** An interrupted user context: registers in `struct kvm_regs` order and fault details. */
export interface UserContext {
  /** rax … r15, rip, rflags. */
  regs: BigUint64Array;
  /** Error code, trap number and fault address, as sigcontext reports them. */
  err: bigint;
  /** See `err`. */
  trapno: bigint;
  /** See `err`. */
  cr2: bigint;
}

const FRAME_SIZE = 440;
const UC = 8, MCONTEXT = UC + 40, SIGMASK = UC + 296, INFO = 312;
const REDZONE = 128n;
/** sigcontext's general registers, in order, as indexes into kvm_regs. */
const SC_REGS = [
  R.r8,
  R.r9,
  R.r10,
  R.r11,
  R.r12,
  R.r13,
  R.r14,
  R.r15,
  R.rdi,
  R.rsi,
  R.rbp,
  R.rbx,
  R.rdx,
  R.rax,
  R.rcx,
  R.rsp,
  R.rip,
  R.rflags,
]; // deno-fmt-ignore
const SC = { cs: 144, ss: 150, err: 152, trapno: 160, oldmask: 168, cr2: 176, fpstate: 184 };
const UC_FLAGS = 7n; // UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
const USER_CS = 0x33, USER_DS = 0x2b;
const FP_XSTATE_MAGIC1 = 0x46505853, FP_XSTATE_MAGIC2 = 0x46505845;
const SW_BYTES = 464, XSTATE_BV = 512;
/** rflags bits a signal frame may change (Linux's FIX_EFLAGS). */
const FIX_EFLAGS = 0x50dd5n;
/** Cleared at handler entry: DF, TF, RF. */
const ENTRY_CLEAR = 0x10500n;

/** The FPU state a handler starts with (Linux clears it): x87 and SSE in their init state. */
export function initXsave(): Uint8Array {
  const x = new Uint8Array(4096);
  const v = new DataView(x.buffer);
  v.setUint16(0, 0x37f, true); // FCW
  v.setUint32(24, 0x1f80, true); // MXCSR
  v.setUint32(28, 0xffff, true); // MXCSR_MASK
  v.setBigUint64(XSTATE_BV, 3n, true);
  return x;
}

/**
 * Builds the frame for `sig` on the stack of `ctx` (or the alternate
 * stack), saving `ctx`, `mask` and the XSAVE image `xsave` (`size` bytes in
 * standard format; undefined leaves the image for the guest to XSAVE), and
 * turns `ctx` into the handler's entry state. Returns the image's address,
 * or undefined when the frame does not fit in user memory (the caller then
 * kills with SIGSEGV, as Linux's force_sigsegv does).
 */
export function pushFrame(
  mem: GuestMemory,
  s: SignalState,
  sig: number,
  info: SigInfo,
  act: SigAction,
  ctx: UserContext,
  mask: bigint,
  xsave: Uint8Array | undefined,
  size: number,
  xcr0: bigint,
): bigint | undefined {
  const rsp = ctx.regs[R.rsp];
  let sp = rsp - REDZONE;
  let onAlt = s.onAltstack(sp);
  if ((act.flags & 0x08000000n) && s.altstackFlags(sp) === 0) {
    sp = s.altstack.sp + s.altstack.size;
    onAlt = true;
  }
  const fp = (sp - BigInt(size + 4)) & ~63n;
  const frame = ((fp - BigInt(FRAME_SIZE)) & ~15n) - 8n;
  if (onAlt && !s.onAltstack(frame)) return undefined;
  let o: number;
  try {
    o = mem.check(frame, Number(fp - frame) + size + 4);
  } catch {
    return undefined;
  }
  // Offsets in RAM (above it, the frame's place in the pool: check).
  const v = mem.view, f = o + Number(fp - frame);
  mem.bytes.fill(0, o, f);
  v.setBigUint64(o, act.restorer, true);
  v.setBigUint64(o + UC, UC_FLAGS, true);
  v.setBigUint64(o + UC + 16, s.altstack.sp, true);
  v.setInt32(o + UC + 24, s.altstack.flags, true);
  v.setBigUint64(o + UC + 32, s.altstack.size, true);
  const mc = o + MCONTEXT;
  SC_REGS.forEach((r, i) => v.setBigUint64(mc + i * 8, ctx.regs[r], true));
  v.setUint16(mc + SC.cs, USER_CS, true);
  v.setUint16(mc + SC.ss, USER_DS, true);
  v.setBigUint64(mc + SC.err, ctx.err, true);
  v.setBigUint64(mc + SC.trapno, ctx.trapno, true);
  v.setBigUint64(mc + SC.oldmask, mask, true);
  v.setBigUint64(mc + SC.cr2, ctx.cr2, true);
  v.setBigUint64(mc + SC.fpstate, fp, true);
  v.setBigUint64(o + SIGMASK, mask, true);
  if (act.flags & 4n) writeSiginfo(mem, o + INFO, info);
  // The FPU state as XSAVE writes it, with Linux's markers around it.
  if (xsave) mem.bytes.set(xsave.subarray(0, size), f);
  else mem.bytes.fill(0, f, f + size); // XSAVE leaves the header's tail as it finds it
  mem.bytes.fill(0, f + SW_BYTES, f + 512);
  v.setUint32(f + SW_BYTES, FP_XSTATE_MAGIC1, true);
  v.setUint32(f + SW_BYTES + 4, size + 4, true);
  v.setBigUint64(f + SW_BYTES + 8, xcr0, true);
  v.setUint32(f + SW_BYTES + 16, size, true);
  v.setUint32(f + size, FP_XSTATE_MAGIC2, true);

  if (s.altstack.flags & 0x80000000) s.altstack = { sp: 0n, size: 0n, flags: 2 };
  const r = ctx.regs;
  r[R.rdi] = BigInt(sig);
  r[R.rsi] = frame + BigInt(INFO);
  r[R.rdx] = frame + BigInt(UC);
  r[R.rax] = 0n;
  r[R.rip] = act.handler;
  r[R.rsp] = frame;
  r[R.rflags] &= ~ENTRY_CLEAR;
  return fp;
}

/**
 * The rflags a frame at `rsp - 8` (after the handler's `ret`) would restore
 * (the bits it may set), without reading the rest; undefined when the frame
 * is not in user memory.
 */
export function savedRflags(mem: GuestMemory, rsp: bigint): bigint | undefined {
  try {
    const o = mem.check(rsp - 8n, FRAME_SIZE);
    return mem.view.getBigUint64(o + MCONTEXT + SC_REGS.indexOf(R.rflags) * 8, true) & FIX_EFLAGS;
  } catch {
    return undefined;
  }
}

/** What rt_sigreturn restores, read from the frame whose pretcode was just popped. */
export interface SavedFrame {
  /** The interrupted context (rflags merged with `rflags` outside FIX_EFLAGS). */
  ctx: UserContext;
  /** The signal mask to restore. */
  mask: bigint;
  /** The XSAVE image to load (a `struct kvm_xsave`), or undefined if the frame is bad. */
  xsave: Uint8Array;
  /** uc_stack, to restore the alternate stack from. */
  stack: { sp: bigint; flags: number; size: bigint };
}

/**
 * Reads the frame at `rsp - 8` (after the handler's `ret`). `rflags` gives
 * the bits a frame may not change; `size` and `xcr0` bound the XSAVE image.
 * Returns undefined when the frame is not in user memory or its MXCSR is invalid.
 */
export function popFrame(
  mem: GuestMemory,
  rsp: bigint,
  rflags: bigint,
  size: number,
  xcr0: bigint,
): SavedFrame | undefined {
  let o: number;
  try {
    o = mem.check(rsp - 8n, FRAME_SIZE);
  } catch {
    return undefined;
  }
  const v = mem.view, mc = o + MCONTEXT;
  const regs = new BigUint64Array(18);
  SC_REGS.forEach((r, i) => regs[r] = v.getBigUint64(mc + i * 8, true));
  regs[R.rflags] = (rflags & ~FIX_EFLAGS) | (regs[R.rflags] & FIX_EFLAGS);
  const xsave = initXsave();
  const fp = v.getBigUint64(mc + SC.fpstate, true);
  if (fp !== 0n) {
    let f: number;
    try {
      f = mem.check(fp, 512);
    } catch {
      return undefined;
    }
    let n = 512;
    const magic = v.getUint32(f + SW_BYTES, true);
    const xsize = v.getUint32(f + SW_BYTES + 16, true);
    if (magic === FP_XSTATE_MAGIC1 && xsize >= 576 && xsize <= size) {
      try {
        mem.check(fp, xsize + 4);
        if (v.getUint32(f + xsize, true) === FP_XSTATE_MAGIC2) n = xsize;
      } catch { /* legacy state only */ }
    }
    xsave.set(mem.bytes.subarray(f, f + n));
    const xv = new DataView(xsave.buffer);
    xsave.fill(0, SW_BYTES, 512);
    xv.setUint32(28, 0xffff, true); // MXCSR_MASK: what the CPU reports
    // Reserved MXCSR bits would fault XRSTOR: a bad frame, as on Linux.
    if (xv.getUint32(24, true) & ~0xffff) return undefined;
    if (n === 512) xv.setBigUint64(XSTATE_BV, 3n, true);
    else xv.setBigUint64(XSTATE_BV, xv.getBigUint64(XSTATE_BV, true) & xcr0, true);
    xsave.fill(0, XSTATE_BV + 8, 576); // xcomp_bv and reserved: standard format
  }
  return {
    ctx: {
      regs,
      err: v.getBigUint64(mc + SC.err, true),
      trapno: v.getBigUint64(mc + SC.trapno, true),
      cr2: v.getBigUint64(mc + SC.cr2, true),
    },
    mask: v.getBigUint64(o + SIGMASK, true),
    xsave,
    stack: {
      sp: v.getBigUint64(o + UC + 16, true),
      flags: v.getInt32(o + UC + 24, true),
      size: v.getBigUint64(o + UC + 32, true),
    },
  };
}
