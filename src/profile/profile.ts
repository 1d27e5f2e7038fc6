/**
 * A run's profile: call stacks sampled from every vCPU of every process,
 * kept as folded stacks (Brendan Gregg's `a;b;c N`, one line per distinct
 * stack), the form flame graph tools read. See docs/PROFILING.md.
 * @module
 */

/** How to profile a run (`BootOptions.profile`). */
export interface ProfileOptions {
  /** Samples per second of each vCPU (default 99, as `perf record -F 99`). */
  hz?: number;
}

/** The default sampling rate: off the beat of 100 Hz timers in the guest. */
export const DEFAULT_HZ = 99;

/** Stacks sampled in a run, folded: each distinct stack with its count. */
export class Profile {
  /** Samples per second of each vCPU. */
  readonly hz: number;
  /** Sampling period in host monotonic ns. */
  readonly periodNs: bigint;
  #counts = new Map<string, number>();
  #samples = 0;

  /** A profile sampled `hz` times a second (1 to 10,000). */
  constructor(options: ProfileOptions = {}) {
    const hz = options.hz ?? DEFAULT_HZ;
    if (!Number.isFinite(hz) || hz < 1 || hz > 10_000) {
      throw new RangeError(`profile rate ${hz} Hz: expected 1 to 10000`);
    }
    this.hz = hz;
    this.periodNs = BigInt(Math.round(1e9 / hz));
  }

  /** Counts one sample of `frames`, outermost first. */
  add(frames: readonly string[]): void {
    // ';' separates frames; the count follows the last space.
    const key = frames.map((f) => f.replaceAll(";", ":").replaceAll("\n", " ")).join(";");
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    this.#samples++;
  }

  /** Samples taken. */
  get samples(): number {
    return this.#samples;
  }

  /** Each distinct stack (frames joined by `;`) with its count. */
  get stacks(): ReadonlyMap<string, number> {
    return this.#counts;
  }

  /** The folded stacks text: `frame;frame;... count` per line, sorted. */
  folded(): string {
    return [...this.#counts].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
      .map(([k, n]) => `${k} ${n}\n`).join("");
  }
}
