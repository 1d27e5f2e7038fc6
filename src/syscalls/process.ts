/**
 * Process-level calls the guest kernel sends to the host: exit, resource
 * limits, randomness, names and capabilities. (set_robust_list and rseq are served in the
 * guest kernel.)
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { bufferAddress, hostSyscall } from "./host.ts";
import { RLIM_NLIMITS, rlimitsOf, setRlimit } from "./limits.ts";
import type { Process, SyscallModule } from "./registry.ts";
import { threadsOf } from "./thread.ts";

const PR_SET_NAME = 15, PR_GET_NAME = 16;
const GRND_NONBLOCK = 1, GRND_RANDOM = 2, GRND_INSECURE = 4;

/**
 * prlimit64's work, also getrlimit's and setrlimit's (`required`: their
 * pointer may not be NULL). The limits and their grants: limits.ts.
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
  const l = rlimitsOf(p).values;
  if (newLimit) setRlimit(p, r, p.mem.u64(newLimit), p.mem.u64(newLimit + 8n));
  if (oldLimit) {
    const o = p.mem.check(oldLimit, 16);
    p.mem.view.setBigUint64(o, l[r * 2], true);
    p.mem.view.setBigUint64(o + 8, l[r * 2 + 1], true);
  }
  return 0;
}

/**
 * The process's name (PR_GET_NAME, /proc/PID/comm): 16 bytes, NUL-padded;
 * argv[0]'s last component until execve or PR_SET_NAME sets it.
 */
export function comm(p: Process): Uint8Array {
  let c = p.state.get("comm") as Uint8Array | undefined;
  if (!c) {
    c = new Uint8Array(16);
    const base = (p.argv[0] ?? p.exePath).split("/").pop() ?? "";
    c.set(new TextEncoder().encode(base).subarray(0, 15));
    p.state.set("comm", c);
  }
  return c;
}

/** Names the process after the last component of `path` (execve's file name), as Linux does. */
export function setComm(p: Process, path: string): void {
  const c = new Uint8Array(16);
  c.set(new TextEncoder().encode(path.split("/").pop() ?? "").subarray(0, 15));
  p.state.set("comm", c);
}

const CAP_V1 = 0x19980330, CAP_V2 = 0x20071026, CAP_V3 = 0x20080522;
const NR_CAPGET = 125;

/**
 * The process's capability sets as [effective, permitted, inheritable],
 * two 32-bit words each (v3 layout): the host process's at start (a
 * native run of the program has what this process has), then what capset
 * left. The host process keeps its own; what hermitux emulates itself
 * (scheduling policies, nice values) asks {@linkcode capable}.
 */
export function caps(p: Process): number[] {
  let c = p.state.get("caps") as number[] | undefined;
  if (!c) {
    const hdr = new Uint32Array([CAP_V3, 0]), data = new Uint32Array(6);
    c = [0, 0, 0, 0, 0, 0];
    const ok = hostSyscall(
      NR_CAPGET,
      bufferAddress(new Uint8Array(hdr.buffer)),
      bufferAddress(new Uint8Array(data.buffer)),
    ) === 0n;
    // Host layout: one {effective, permitted, inheritable} per 32 bits.
    if (ok) c = [data[0], data[3], data[1], data[4], data[2], data[5]];
    p.state.set("caps", c);
  }
  return c;
}

/** Whether capability `cap` (e.g. 23, CAP_SYS_NICE) is in the process's effective set. */
export function capable(p: Process, cap: number): boolean {
  return (caps(p)[cap >> 5] & (1 << (cap & 31))) !== 0;
}

let validMask: [number, number] | undefined;

/** The capability bits that exist on the host, as two 32-bit words. */
function validCaps(): [number, number] {
  if (!validMask) {
    let last = 40; // CAP_CHECKPOINT_RESTORE, Linux 5.9 and later
    try {
      last = Number(Deno.readTextFileSync("/proc/sys/kernel/cap_last_cap").trim()) || last;
    } catch { /* no /proc: the default */ }
    const bits = (n: number) => n >= 32 ? 0xffffffff : n <= 0 ? 0 : (2 ** n - 1) >>> 0;
    validMask = [bits(last + 1), bits(last + 1 - 32)];
  }
  return validMask;
}

/**
 * capget's and capset's header: the number of 32-bit words in each set
 * (1 for v1, 2 for v2 and v3). An unknown version is answered with the one
 * the kernel prefers, and EINVAL (0 for capget's probe with NULL data).
 */
function capHeader(p: Process, hdr: bigint, data: bigint, probe: boolean): number {
  const at = p.mem.check(hdr, 8);
  const version = p.mem.view.getUint32(at, true), pid = p.mem.view.getInt32(at + 4, true);
  if (version !== CAP_V1 && version !== CAP_V2 && version !== CAP_V3) {
    p.mem.view.setUint32(at, CAP_V3, true);
    if (probe && !data) return 0;
    throw new SyscallError(E.EINVAL);
  }
  if (pid < 0) throw new SyscallError(E.EINVAL);
  if (pid !== 0 && pid !== p.pid && !threadsOf(p)?.has(pid)) {
    throw new SyscallError(probe ? E.ESRCH : E.EPERM);
  }
  return version === CAP_V1 ? 1 : 2;
}

/** Process lifetime and identity-adjacent calls. */
export const processModule: SyscallModule = {
  name: "process",
  partial: {
    prlimit64: "own process only (pid 0 or self); enforced: NOFILE, NPROC, CPU and FSIZE " +
      "(src/syscalls/limits.ts); the others are recorded",
    prctl: "PR_SET_NAME and PR_GET_NAME only; others EINVAL",
    capset:
      "the sets start as the host process's; capset records them (within Linux's rules for an " +
      "unprivileged change) for capget, and nothing is enforced",
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
    capget({ args: [hdr, data], process: p }) {
      const words = capHeader(p, hdr, data, true);
      if (!data) return 0;
      const at = p.mem.check(data, words * 12), c = caps(p);
      for (let w = 0; w < words; w++) {
        for (let k = 0; k < 3; k++) p.mem.view.setUint32(at + w * 12 + k * 4, c[k * 2 + w], true);
      }
      return 0;
    },
    capset({ args: [hdr, data], process: p }) {
      const words = capHeader(p, hdr, data, false);
      const at = p.mem.check(data, words * 12), c = caps(p), next = c.slice();
      for (let w = 0; w < words; w++) {
        for (let k = 0; k < 3; k++) {
          next[k * 2 + w] = p.mem.view.getUint32(at + w * 12 + k * 4, true);
        }
      }
      // Bits past the last capability the host knows are dropped, as Linux does.
      const valid = validCaps();
      for (let i = 0; i < 6; i++) next[i] &= valid[i & 1];
      // Linux's rules without CAP_SETPCAP: permitted may only shrink, effective
      // stays within it, inheritable within the old inheritable and permitted.
      for (let w = 0; w < 2; w++) {
        const [eff, prm, inh] = [next[w], next[2 + w], next[4 + w]];
        if ((prm & ~c[2 + w]) || (eff & ~prm) || (inh & ~(c[4 + w] | c[2 + w]))) {
          throw new SyscallError(E.EPERM);
        }
      }
      c.splice(0, 6, ...next);
      return 0;
    },
    prctl({ args: [option, arg2], process: p }) {
      if (option === BigInt(PR_SET_NAME)) {
        const start = p.mem.check(arg2, 1);
        const src = p.mem.bytes.subarray(start, Math.min(start + 15, p.mem.bytes.length));
        const end = src.indexOf(0);
        // A new array: a forked child's name starts as its parent's array.
        const c = new Uint8Array(16);
        c.set(end < 0 ? src : src.subarray(0, end));
        p.state.set("comm", c);
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
