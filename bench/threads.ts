// Threads, native and hermitux side by side in one run: a CPU-bound program
// with 1 and 2 threads (speed-up), thread create+join latency, futex
// ping-pong latency and how soon a thread parked in epoll_wait wakes, with
// hermitux/native ratios (Markdown).
//
//   deno task bench:threads
import { compileC } from "../tests/fixtures.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const RUNS = Number(Deno.env.get("THREADS_RUNS") ?? 3);

async function build(name: string): Promise<string> {
  const src = await Deno.readTextFile(`${ROOT}bench/c/${name}.c`);
  return compileC(`bench-${name}-pthread`, src, "gcc", ["-O2", "-pthread"]);
}

/** Runs natively or under the hermitux CLI; returns stderr (the program's own timings). */
async function run(hermitux: boolean, bin: string, args: string[]): Promise<string> {
  const cmd = hermitux
    ? [Deno.execPath(), ["run", "-A", "--quiet", `${ROOT}cli.ts`, "run", bin, ...args]] as const
    : [bin, args] as const;
  const r = await new Deno.Command(cmd[0], { args: [...cmd[1]], stdout: "null", stderr: "piped" })
    .output();
  const err = new TextDecoder().decode(r.stderr);
  if (!r.success) throw new Error(`${bin} failed: ${err}`);
  return err;
}

const num = (s: string, key: string) => Number(new RegExp(`${key} ([\\d.]+)`).exec(s)?.[1]);
const parallel = await build("parallel");
const lat = await build("thread_lat");
const rows: string[] = [];
const wall: Record<string, number> = {};
for (const h of [false, true]) {
  for (const n of [1, 2]) {
    const xs: number[] = [];
    for (let i = 0; i < RUNS; i++) xs.push(num(await run(h, parallel, [String(n)]), "wall"));
    wall[`${h}-${n}`] = median(xs);
  }
}
const speedup = (h: boolean) => wall[`${h}-1`] / wall[`${h}-2`];
rows.push(
  `| CPU-bound, 1 thread (ms) | ${wall["false-1"].toFixed(0)} | ${wall["true-1"].toFixed(0)} | ${
    (wall["true-1"] / wall["false-1"]).toFixed(2)
  }× |`,
);
rows.push(
  `| CPU-bound, 2 threads (ms) | ${wall["false-2"].toFixed(0)} | ${wall["true-2"].toFixed(0)} | ${
    (wall["true-2"] / wall["false-2"]).toFixed(2)
  }× |`,
);
rows.push(
  `| speed-up 1 → 2 threads | ${speedup(false).toFixed(2)}× | ${speedup(true).toFixed(2)}× | |`,
);
for (const key of ["create+join", "pingpong"]) {
  const n: number[] = [], h: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    n.push(num(await run(false, lat, []), key.replace("+", "\\+")));
    h.push(num(await run(true, lat, []), key.replace("+", "\\+")));
  }
  const [mn, mh] = [median(n), median(h)];
  const what = key === "pingpong" ? "futex ping-pong round trip (µs)" : "thread create+join (µs)";
  rows.push(
    `| ${what} | ${(mn / 1000).toFixed(1)} | ${(mh / 1000).toFixed(1)} | ${
      (mh / mn).toFixed(1)
    }× |`,
  );
}
// A thread in epoll_wait, woken by the main thread's writes (by the default transport).
const wake = await build("wake_lat");
{
  const n: number[] = [], h: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    n.push(num(await run(false, wake, []), "median"));
    h.push(num(await run(true, wake, []), "median"));
  }
  const [mn, mh] = [median(n), median(h)];
  rows.push(
    `| epoll_wait wake-up in a thread (µs) | ${mn.toFixed(1)} | ${mh.toFixed(1)} | ${
      (mh / mn).toFixed(0)
    }× |`,
  );
}
console.log("| measure | native | hermitux | hermitux/native |");
console.log("|---|---:|---:|---:|");
for (const r of rows) console.log(r);
