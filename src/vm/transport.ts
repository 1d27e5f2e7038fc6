/**
 * The exitless host-call transport: vCPUs run on runner threads and post
 * requests to their host-call blocks, which this thread polls; a request
 * costs no VM exit (~100 µs by exit on kvm_pvm, a few µs posted). After
 * POLL_WINDOW_MS without calls the poller sleeps and guests ring the
 * doorbell again, so an idle guest costs no CPU.
 * @module
 */
import { ABI, BOOT_INFO, HOSTCALL } from "../kernel/abi.ts";
import { hostSyscall } from "../syscalls/host.ts";
import { SIG } from "./fault.ts";
import { physOf } from "./percpu.ts";
import { POLL_WINDOW_MS } from "./exitless.ts";
import { monotonicNs } from "../syscalls/signal.ts";
import { hostCall } from "./hostcall.ts";
import type { Guest } from "./guest.ts";
import { PlainServer } from "./plain.ts";
import { armKick } from "./setup.ts";

const NR_SCHED_YIELD = 24;

/** Serves the requests running vCPUs posted exitless; returns how many. */
export function pollHostCalls(g: Guest): number {
  const t = g.threads!, mem = g.mem!, v = mem.view;
  let served = 0;
  for (const cpu of t.cpus) {
    if (!cpu.alive || cpu.busy || cpu.parked) continue;
    const hc = cpu.hc ??= physOf(mem, cpu.id, ABI.HOSTCALL_ADDR);
    const seq = v.getUint32(hc + HOSTCALL.seq, true), ack = v.getUint32(hc + HOSTCALL.ack, true);
    if (seq === ack || seq === (~ack >>> 0)) continue;
    let done = false;
    cpu.busy = true;
    try {
      g.asThread(cpu, () => done = hostCall(g, true));
    } finally {
      cpu.busy = false;
    }
    // The result is in place before the guest sees its ack.
    v.setUint32(hc + HOSTCALL.ack, done ? seq : ~seq >>> 0, true);
    g.stats.exitless++;
    served++;
  }
  return served;
}

/**
 * Tells running vCPUs whether this thread polls their host-call blocks:
 * on, asleep (they kick it awake, when KVM takes the kick), or off.
 */
export function setPolling(g: Guest, on: boolean, asleep = false): void {
  const state = on ? ABI.POLL_ON : asleep && g.wakeFd >= 0 ? ABI.POLL_ASLEEP : ABI.POLL_OFF;
  const words = g.pollWord ??= new Int32Array(
    g.mem!.bytes.buffer,
    ABI.BOOT_INFO_ADDR + BOOT_INFO.polling,
    2,
  );
  // A sequentially consistent store: a full fence before we look at the
  // blocks again (hostcall.c posts, fences, then reads this word).
  Atomics.store(words, 0, state);
}

/**
 * The run loop of the exitless transport: every vCPU runs on a runner
 * thread; this one serves requests posted to the poller, runner exits
 * (doorbells, faults, interrupts) and timers. It polls while calls keep
 * coming and sleeps on the runners' door after POLL_WINDOW_MS without
 * any, when guests ring the doorbell instead.
 */
export function runExitless(g: Guest): void {
  // Plain calls are served in C (plain.ts), the rest here. A slice's end
  // (ProcessTable.runSlice) leaves it all as it is, for the next slice.
  let plain = g.plain;
  if (!plain) {
    plain = g.plain = new PlainServer(g);
    setPolling(g, true);
    g.threads!.startMain();
  } else setPolling(g, true); // a slice begins where the last one stopped
  let paused = false;
  try {
    loop(g, plain);
    paused = !g.process!.ended && !g.handoff;
  } finally {
    if (!paused) {
      plain.dispose();
      g.plain = undefined;
    }
  }
  if (!paused) setPolling(g, false);
}

function loop(g: Guest, plain: PlainServer): void {
  const p = g.process!, threads = g.threads!;
  // Clock reads cost more than a poll: time is looked at every CHECK
  // rounds (~50 µs idle; one round of C's spin is as long), timers every
  // 64 calls served.
  const CHECK = 1024;
  let idle = 0, served = 0, door = threads.door, recent = true, last = 0, polling = true;
  while (!p.ended && !g.handoff && !g.table.yieldDue()) {
    if (!polling) {
      // Asleep until a runner exits (a doorbell, a fault) or a timer is due;
      // only a guest's call (not a timer) starts a polling window again.
      const seen = threads.door;
      if (!threads.pending()) {
        const wake = exitlessWake(g);
        const ms = wake === undefined ? 50 : Math.min(50, Number(wake - monotonicNs()) / 1e6);
        if (ms > 0) threads.waitDoor(seen, ms);
      }
      // A guest's kick: its request is posted, waiting to be found.
      const kicked = g.wakeFd >= 0 && pollHostCalls(g) > 0;
      const active = kicked || threads.door !== seen || threads.pending();
      door = threads.door;
      threads.serveWorkers();
      exitlessTimers(g);
      if (active) {
        setPolling(g, polling = true);
        recent = true;
        idle = 0;
      }
      continue;
    }
    const fast = plain.serve(door);
    let work = fast.served;
    if (fast.back) work += pollHostCalls(g);
    const d = threads.door;
    if (d !== door) {
      door = d;
      work += threads.serveWorkers();
    }
    if (work) {
      idle = 0;
      recent = true;
      if (fast.served || (++served & 63) === 0) exitlessTimers(g);
      continue;
    }
    // C spun a while for nothing: as long as CHECK rounds here.
    if (fast.back && ++idle % CHECK !== 0) continue;
    // Let a runner (or one of Deno's own threads) that shares this core run.
    hostSyscall(NR_SCHED_YIELD);
    threads.pollWatched();
    exitlessTimers(g);
    const now = performance.now();
    if (recent) {
      recent = false;
      last = now;
    }
    if (p.ended || now - last < POLL_WINDOW_MS) continue;
    // Quiet for a while: stop polling (guests kick us awake, or ring the
    // doorbell), then look once more (a request posted as we stopped).
    armKick(g);
    setPolling(g, polling = false, true);
    if (pollHostCalls(g)) setPolling(g, polling = true);
  }
}

/** When the exitless loop must wake for timers and parked deadlines. */
export function exitlessWake(g: Guest): bigint | undefined {
  let at = g.wakeNs || undefined;
  const parked = g.threads!.nextDeadline();
  if (parked !== undefined && (at === undefined || parked < at)) at = parked;
  const retry = g.sig.retryAt;
  if (retry !== 0n && (at === undefined || retry < at)) at = retry;
  return at;
}

/** Fires what is due: guest timers, the run's deadline, parked timeouts, a delivery retry. */
export function exitlessTimers(g: Guest): void {
  const sig = g.sig, threads = g.threads!, main = threads.main;
  const wake = exitlessWake(g);
  if (wake === undefined) return;
  const now = monotonicNs();
  if (now < wake) return;
  g.wakeNs = 0n;
  sig.fireTimers(now);
  if (sig.timedOut) {
    g.process!.exit(0, SIG.SIGKILL);
    return;
  }
  if (threads.nextDeadline() !== undefined) threads.serveWorkers(now);
  const retry = sig.retryAt !== 0n && sig.retryAt <= now;
  if (retry) sig.retryAt = 0n;
  // What fired for the first thread reaches it as for any other: a kick.
  if (main.alive && sig.next()) threads.interrupt(main);
  // A retry: any other thread left with a signal to act on is kicked too.
  if (retry) {
    for (const c of threads.cpus) {
      if (c === main || !c.alive || c.parked || !c.runner) continue;
      if (g.signalled(c)) threads.interrupt(c);
    }
  }
  sig.armHost(now, true);
}
