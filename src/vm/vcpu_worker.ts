/**
 * A host thread (Deno Worker) that drives one guest thread's vCPU. It only
 * calls KVM_RUN: every exit (a host call, a fault) is handed to the main
 * thread, which serves it with the syscall modules and the process's state,
 * and resumes this vCPU, parks it, or stops it. Guest code runs in parallel;
 * host calls are served one at a time.
 * @module
 */
import { VcpuFd } from "../kvm/ioctls.ts";
import { CTL, gettid, kick, type WorkerInit, WSTATE } from "./wire.ts";

declare const self: {
  onmessage: ((e: MessageEvent<WorkerInit>) => void) | null;
  postMessage(m: unknown): void;
  close(): void;
};

self.onmessage = (e: MessageEvent<WorkerInit>) => {
  const init = e.data;
  const ctl = new Int32Array(init.ctl);
  const door = new Int32Array(init.door);
  const vcpu = new VcpuFd(init.vcpuFd);
  const run = new Uint8Array(
    Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(BigInt(init.runAddr))!, 8),
  );
  Atomics.store(ctl, CTL.tid, gettid());
  self.postMessage("ready");
  for (;;) {
    // Wait to be given a thread to run (or told to quit).
    let s = Atomics.load(ctl, CTL.state);
    while (s !== WSTATE.RUN) {
      if (s === WSTATE.QUIT) {
        Atomics.store(ctl, CTL.done, 1);
        Atomics.notify(ctl, CTL.done);
        return self.close();
      }
      Atomics.wait(ctl, CTL.state, s);
      s = Atomics.load(ctl, CTL.state);
    }
    for (;;) {
      if (!vcpu.run()) {
        run[1] = 0; // immediate_exit: the kick was seen
        if (Atomics.load(ctl, CTL.state) !== WSTATE.RUN) break;
        // Main asked for this thread to act on a signal: report, as an exit.
        if (Atomics.compareExchange(ctl, CTL.intr, 1, 2) !== 1) continue;
      }
      Atomics.store(ctl, CTL.state, WSTATE.EXITED);
      Atomics.add(door, 0, 1);
      Atomics.notify(door, 0);
      kick(BigInt(init.mainRunAddr), init.pid, init.mainTid);
      Atomics.wait(ctl, CTL.state, WSTATE.EXITED);
      if (Atomics.load(ctl, CTL.state) !== WSTATE.RUN) break;
    }
  }
};
