/**
 * Facts of this host process that every guest copies (its auxiliary
 * vector, its uname), and the SIGALRM disposition runs rely on.
 * @module
 */
import { libc } from "../kvm/libc.ts";

let utsname: Uint8Array | undefined;
const named = new Map<string, Uint8Array>();
let auxv: Map<number, bigint> | undefined;
let alarmsHandled = false;
const SIGALRM = 14, SA_RESTART = 0x10000000;

/**
 * SIGALRM interrupts KVM_RUN (a runner's kick, the main thread's): it must
 * never kill us. It gets a handler of its own that does nothing (libc's
 * getpid: any function that ignores its argument will do), set once with
 * sigaction and never taken away. A Deno listener was not enough: Deno
 * takes its handler away as the process exits, and a kick still in flight
 * then ended the process with status 142 (seen in tests/hostile_test.ts).
 */
export function ignoreAlarms(): void {
  if (alarmsHandled) return;
  alarmsHandled = true;
  // Deno's listener first: it starts Deno's signal thread and pipe now, not
  // in the middle of a run whose fds are being counted; ours then replaces it.
  Deno.addSignalListener("SIGALRM", () => {});
  const noop = libc().dlsym(null, new TextEncoder().encode("getpid\0"));
  // glibc's struct sigaction: the handler, a 128-byte mask, the flags at 136, the restorer.
  const act = new Uint8Array(152), v = new DataView(act.buffer);
  if (noop) v.setBigUint64(0, Deno.UnsafePointer.value(noop), true);
  v.setInt32(136, SA_RESTART, true);
  if (noop) libc().sigaction(SIGALRM, act, null);
}

/**
 * This process's own auxiliary vector: what Linux gives every process on
 * this host (AT_HWCAP, AT_HWCAP2, AT_MINSIGSTKSZ…), so the guest gets the same.
 */
export function hostAuxv(): Map<number, bigint> {
  if (!auxv) {
    auxv = new Map();
    try {
      const words = new BigUint64Array(Deno.readFileSync("/proc/self/auxv").slice().buffer);
      for (let i = 0; i + 1 < words.length && words[i] !== 0n; i += 2) {
        auxv.set(Number(words[i]), words[i + 1]);
      }
    } catch { /* no /proc: fall back to CPUID below */ }
  }
  return auxv;
}

/**
 * The host's uname, with `nodename` (default "hermitux"; at most 64 bytes
 * kept) as the node name.
 */
export function hostUtsname(nodename = "hermitux"): Uint8Array {
  if (!utsname) {
    utsname = new Uint8Array(6 * 65);
    libc().uname(utsname);
  }
  let out = named.get(nodename);
  if (!out) {
    out = utsname.slice();
    out.fill(0, 65, 130);
    out.set(new TextEncoder().encode(nodename).subarray(0, 64), 65);
    named.set(nodename, out);
  }
  return out;
}
