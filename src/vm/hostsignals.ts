/**
 * Signals sent to the hermitux host process, for the first guest process:
 * what an OCI runtime needs (`kill CONTAINER SIGTERM` signals the host
 * process that holds the VM, and a guest with a SIGTERM handler must run
 * it). A run is synchronous on the main thread, so Deno's signal listeners
 * there would only run after it; a Worker listens instead and records each
 * signal in shared memory, and the run looks every {@linkcode POLL_MS} ms
 * (`BootOptions.signals`; src/process/table.ts).
 * @module
 */

/** What the run asks every {@linkcode POLL_MS} ms: signals to raise in its first process. */
export interface SignalSource {
  /** The signal numbers received since the last call (each once), lowest first. */
  take(): number[];
}

/** How often a run looks for signals from its {@linkcode SignalSource} (ms). */
export const POLL_MS = 50;

/**
 * The host signals {@linkcode HostSignals} takes over by default: those a
 * container's init is sent (`docker stop`, Ctrl-C, reload, resize).
 */
export const FORWARDED = [
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
  "SIGTERM",
  "SIGWINCH",
] as const;

/** The numbers of {@linkcode FORWARDED}, as x86-64 Linux has them. */
const NUMBERS: Record<(typeof FORWARDED)[number], number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGUSR1: 10,
  SIGUSR2: 12,
  SIGTERM: 15,
  SIGWINCH: 28,
};

/**
 * Listens for host signals on a Worker: from {@linkcode HostSignals.start}
 * on, those signals no longer act on this process (a SIGTERM no longer ends
 * it) but are recorded until {@linkcode HostSignals.take}n. SIGKILL and
 * SIGSTOP cannot be caught: they still act on the host process (and so on
 * every guest process with it).
 */
export class HostSignals implements SignalSource, Disposable {
  #worker: Worker;
  #bits: Int32Array;

  private constructor(worker: Worker, bits: Int32Array) {
    this.#worker = worker;
    this.#bits = bits;
  }

  /** Starts listening for `names` (default {@linkcode FORWARDED}); resolves once they are caught. */
  static async start(
    names: readonly (typeof FORWARDED)[number][] = FORWARDED,
  ): Promise<HostSignals> {
    const bits = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(new URL("./hostsignals_worker.ts", import.meta.url), {
      type: "module",
    });
    const ready = new Promise<void>((resolve, reject) => {
      worker.onmessage = () => resolve();
      worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`hermitux: host signals: ${e.message}`));
      };
    });
    worker.postMessage({ bits, signals: names.map((n) => [n, NUMBERS[n]]) });
    try {
      await ready;
    } catch (e) {
      worker.terminate();
      throw e;
    }
    return new HostSignals(worker, bits);
  }

  /** {@inheritDoc SignalSource.take} */
  take(): number[] {
    const set = Atomics.exchange(this.#bits, 0, 0);
    const out: number[] = [];
    for (let n = 1; n < 32; n++) if (set & (1 << n)) out.push(n);
    return out;
  }

  /** Stops listening: the signals act on this process again. */
  close(): void {
    this.#worker.terminate();
  }

  /** Same as {@linkcode HostSignals.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
