/**
 * Process-level calls the guest kernel sends to the host: exit, resource
 * limits, randomness and names. (set_robust_list and rseq are served in the
 * guest kernel.)
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { bufferAddress, HOST_NR, hostSyscall } from "./host.ts";
import type { Process, SyscallModule } from "./registry.ts";

const RLIM_NLIMITS = 16;
const PR_SET_NAME = 15, PR_GET_NAME = 16;
const GRND_NONBLOCK = 1, GRND_RANDOM = 2, GRND_INSECURE = 4;

/** The process's resource limits: the host's at start, then the guest's own. */
function limits(p: Process): BigUint64Array {
  let l = p.state.get("rlimits") as BigUint64Array | undefined;
  if (!l) {
    l = new BigUint64Array(RLIM_NLIMITS * 2);
    for (let r = 0; r < RLIM_NLIMITS; r++) {
      const one = new Uint8Array(16);
      if (hostSyscall(HOST_NR.prlimit64, 0, r, 0, bufferAddress(one)) === 0n) {
        l.set(new BigUint64Array(one.buffer), r * 2);
      }
    }
    p.state.set("rlimits", l);
  }
  return l;
}

/**
 * prlimit64's work, also getrlimit's and setrlimit's (`required`: their
 * pointer may not be NULL). Raising a hard limit needs root, as on Linux.
 */
function rlimit(
  p: Process,
  resource: bigint,
  newLimit: bigint,
  oldLimit: bigint,
  required = false,
) {
  const r = Number(BigInt.asUintN(32, resource));
  if (r >= RLIM_NLIMITS) throw new SyscallError(E.EINVAL);
  if (required && !newLimit && !oldLimit) throw new SyscallError(E.EFAULT);
  const l = limits(p);
  let next: [bigint, bigint] | undefined;
  if (newLimit) {
    next = [p.mem.u64(newLimit), p.mem.u64(newLimit + 8n)];
    if (next[0] > next[1]) throw new SyscallError(E.EINVAL);
    if (next[1] > l[r * 2 + 1] && Deno.uid() !== 0) throw new SyscallError(E.EPERM);
  }
  if (oldLimit) {
    const o = p.mem.check(oldLimit, 16);
    p.mem.view.setBigUint64(o, l[r * 2], true);
    p.mem.view.setBigUint64(o + 8, l[r * 2 + 1], true);
  }
  if (next) l.set(next, r * 2);
  return 0;
}

function comm(p: Process): Uint8Array {
  let c = p.state.get("comm") as Uint8Array | undefined;
  if (!c) {
    c = new Uint8Array(16);
    const base = (p.argv[0] ?? p.exePath).split("/").pop() ?? "";
    c.set(new TextEncoder().encode(base).subarray(0, 15));
    p.state.set("comm", c);
  }
  return c;
}

/** Process lifetime and identity-adjacent calls. */
export const processModule: SyscallModule = {
  name: "process",
  partial: {
    prlimit64:
      "own process only (pid 0 or self); limits start as the host's and are recorded, not enforced",
    prctl: "PR_SET_NAME and PR_GET_NAME only; others EINVAL",
  },
  handlers: {
    exit({ args: [code], process: p }) {
      p.exit(Number(code & 0xffn));
      return 0;
    },
    exit_group({ args: [code], process: p }) {
      p.exit(Number(code & 0xffn));
      return 0;
    },
    prlimit64({ args: [pid, resource, newLimit, oldLimit], process: p }) {
      if (pid !== 0n && Number(pid) !== p.pid) throw new SyscallError(E.ESRCH);
      return rlimit(p, resource, newLimit, oldLimit);
    },
    getrlimit: ({ args: [resource, old], process: p }) => rlimit(p, resource, 0n, old, true),
    setrlimit: ({ args: [resource, next], process: p }) => rlimit(p, resource, next, 0n, true),
    getrandom({ args: [buf, len, flags], process: p }) {
      if (flags & ~BigInt(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) {
        throw new SyscallError(E.EINVAL);
      }
      const n = Math.min(Number(len > 0x2000000n ? 0x2000000n : len), 0x1ffffff);
      const out = p.mem.slice(buf, n);
      for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
      return n;
    },
    prctl({ args: [option, arg2], process: p }) {
      if (option === BigInt(PR_SET_NAME)) {
        const start = p.mem.check(arg2, 1);
        const src = p.mem.bytes.subarray(start, Math.min(start + 15, p.mem.size));
        const end = src.indexOf(0);
        const c = comm(p);
        c.fill(0);
        c.set(end < 0 ? src : src.subarray(0, end));
        return 0;
      }
      if (option === BigInt(PR_GET_NAME)) {
        p.mem.slice(arg2, 16).set(comm(p));
        return 0;
      }
      throw new SyscallError(E.EINVAL);
    },
  },
};
