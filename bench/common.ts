// Shared by the benchmarks: build the C loops, open /dev/null for the guest,
// and measure several runners of one thing in alternation.
import { compileC } from "../tests/fixtures.ts";
import { libc } from "../src/kvm/libc.ts";

/** Builds bench/c/NAME.c (statically with musl by default: the smallest start-up). */
export async function benchBinary(name: string, cc = "musl-gcc"): Promise<string> {
  const src = await Deno.readTextFile(new URL(`./c/${name}.c`, import.meta.url));
  return compileC(`bench-${name}-${cc}`, src, cc, cc === "musl-gcc" ? ["-static"] : []);
}

/** A host fd open on /dev/null, to hand to the guest as stdout. */
export function devNull(): number {
  return libc().open(new TextEncoder().encode("/dev/null\0"), 2 | 0x80000, 0);
}

/** The median of `xs` (the upper one of an even count). */
export const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** What one run of a measure yields: figures by name (e.g. `ms`, `rss`, `rps`). */
export type Metrics = Record<string, number>;

/** One way of running a measure: a column of the table, or a reference beside it. */
export interface Contender {
  /** Its key in the result (the runner's name). */
  key: string;
  /** One run; `warm` is true for the warm-up, whose figures are dropped. */
  run: (warm: boolean) => Promise<Metrics>;
}

/**
 * Runs every contender once to warm up (page cache, Deno's module cache,
 * the JIT), then `rounds` rounds of one run each, forwards in even rounds
 * and backwards in odd ones (A B C, C B A, ...), so no contender always runs
 * first or right after the same neighbour. Returns each contender's median
 * of every metric, or the error that stopped it (it is not run again).
 */
export async function alternate(
  contenders: Contender[],
  rounds: number,
): Promise<Map<string, Metrics | Error>> {
  const samples = new Map<string, Metrics[]>();
  const failed = new Map<string, Error>();
  const once = async (c: Contender, warm: boolean) => {
    if (failed.has(c.key)) return;
    try {
      const m = await c.run(warm);
      if (!warm) samples.set(c.key, [...samples.get(c.key) ?? [], m]);
    } catch (e) {
      failed.set(c.key, e instanceof Error ? e : new Error(String(e)));
    }
  };
  for (const c of contenders) await once(c, true);
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 ? [...contenders].reverse() : contenders;
    for (const c of order) await once(c, false);
  }
  const out = new Map<string, Metrics | Error>();
  for (const c of contenders) {
    const err = failed.get(c.key);
    const runs = samples.get(c.key) ?? [];
    if (err) out.set(c.key, err);
    else {
      const m: Metrics = {};
      for (const k of Object.keys(runs[0] ?? {})) m[k] = median(runs.map((r) => r[k]));
      out.set(c.key, m);
    }
  }
  return out;
}
