/**
 * Facts of this host process that every guest copies (its auxiliary
 * vector, its uname), and the SIGALRM disposition runs rely on.
 * @module
 */
import { libc } from "../kvm/libc.ts";

let utsname: Uint8Array | undefined;
const named = new Map<string, Uint8Array>();
let auxv: Map<number, bigint> | undefined;
let alarmListener: (() => void) | undefined;

/**
 * SIGALRM interrupts KVM_RUN (the host timer; a worker's kick): it must
 * never kill us. Never removed: one may still be in flight after a run
 * (the listener does not keep Deno's event loop alive).
 */
export function ignoreAlarms(): void {
  if (!alarmListener) {
    alarmListener = () => {};
    Deno.addSignalListener("SIGALRM", alarmListener);
  }
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
