/**
 * Exitless host calls in a run of several processes. Every process's vCPUs
 * run on runner threads and the main thread serves them all
 * (ProcessTable's loop); with this, a guest's call is posted to its
 * host-call block while the main thread polls them, as in a lone exitless
 * run (src/vm/transport.ts), instead of ringing the doorbell: an exit
 * (70-90 µs on kvm_pvm) and two wake-ups of sleeping host threads. The
 * main thread polls while calls keep coming and sleeps after
 * POLL_WINDOW_MS without any; guests ring the doorbell again then, and
 * their next call starts a polling window. No kick (an ioeventfd) is
 * registered: a VM with one is not recycled for the run's next process.
 * @module
 */
import { hostSyscall } from "../syscalls/host.ts";
import { POLL_WINDOW_MS } from "../vm/exitless.ts";
import type { Guest } from "../vm/guest.ts";
import { writeRoutes } from "../vm/setup.ts";
import { pollHostCalls, setPolling } from "../vm/transport.ts";

const NR_SCHED_YIELD = 24;

/** The polling state of a run with several processes. */
export class RunPoller {
  /** Whether the run's processes post their calls (the first process's transport is not `exit`). */
  readonly enabled: boolean;
  /** Whether the main thread polls now. */
  #on = false;
  /** When the last call or exit was served (performance.now() ms). */
  #last = 0;

  /** @param first the run's first process as it went multi: its transport decides */
  constructor(first: Guest) {
    this.enabled = first.hostCalls !== "exit";
  }

  /**
   * Lets `g` post its calls (a process of this run): its route table marks
   * every call that may come exitless, and its polling word says what the
   * main thread does now. Images set up for the run (fork children, new
   * images) call it as they are scheduled, and a vfork parent again when
   * its child gives the memory back (with the words as they were lent).
   */
  adopt(g: Guest): void {
    if (!this.enabled) return;
    if (!g.exitless) {
      g.exitless = true;
      g.adaptive = false;
      writeRoutes(g, g.mem!);
    }
    setPolling(g, this.#on);
  }

  /** Something was served: poll (again) from now, telling every process in `guests`. */
  busy(guests: Iterable<Guest>): void {
    if (!this.enabled) return;
    this.#last = performance.now();
    if (!this.#on) this.#set(guests, true);
  }

  /**
   * Nothing was served in a round: true while the polling window lasts
   * (the caller looks again, having given its core away for a moment); at
   * its end polling stops ({@linkcode stop}) and false means the caller
   * may sleep, unless a request was posted meanwhile (then true: poll on).
   * `guests`: every process alive; `served`: those not stopped.
   */
  idle(guests: Iterable<Guest>, served: Iterable<Guest>): boolean {
    if (!this.#on) return false;
    if (performance.now() - this.#last < POLL_WINDOW_MS) {
      // A runner (or one of Deno's own threads) may want this core.
      hostSyscall(NR_SCHED_YIELD);
      return true;
    }
    if (!this.stop(guests, served)) return false;
    this.busy(guests);
    return true;
  }

  /**
   * Stops polling: guests ring the doorbell from now on. A request posted
   * as they were told is served here (those of `served`: a stopped
   * process's request waits for SIGCONT); returns whether there was one.
   */
  stop(guests: Iterable<Guest>, served: Iterable<Guest>): boolean {
    if (!this.#on) return false;
    this.#set(guests, false);
    let late = 0;
    for (const g of served) if (g.exitless && !g.ended) late += pollHostCalls(g);
    return late > 0;
  }

  #set(guests: Iterable<Guest>, on: boolean): void {
    this.#on = on;
    for (const g of guests) if (g.exitless && !g.ended) setPolling(g, on);
  }
}
