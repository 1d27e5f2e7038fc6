// In-process boot() → exit of a static hello, many times in one process:
// the median, spread and RSS growth (after a full collection once the event
// loop has run) over BOOT_REPEAT_N boots (10,000 by default), and the fds
// before and after. Then the whole CLI: an empty Deno script against
// `cli.ts run` of a static hello and of `python3 -c pass` (wall-clock
// medians of alternating runs, peak RSS from /usr/bin/time when present).
//
//   ./tools/deno run -A --v8-flags=--expose-gc bench/boot_repeat.ts
import { boot, dropSpareMemory } from "../mod.ts";
import { compileC, fixture } from "../tests/fixtures.ts";
import { devNull } from "./common.ts";

const N = Number(Deno.env.get("BOOT_REPEAT_N") ?? 10_000);
const CLI_RUNS = Number(Deno.env.get("BOOT_REPEAT_CLI_RUNS") ?? 20);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)];
const gc = (globalThis as { gc?: (o: Record<string, string>) => void }).gc;

async function settledRss(): Promise<number> {
  await new Promise((r) => setTimeout(r, 100));
  gc?.({ type: "major", execution: "sync", flavor: "last-resort" });
  return Deno.memoryUsage().rss / 2 ** 20;
}

const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;

// In-process boots.
const hello = await fixture("hello", "musl-static");
const nul = devNull();
const stdio: [number, number, number] = [0, nul, nul];
for (let i = 0; i < 200; i++) await boot({ path: hello, stdio });
const rss0 = await settledRss(), fds0 = fds();
const times: number[] = [];
for (let i = 0; i < N; i++) {
  const t = performance.now();
  await boot({ path: hello, stdio });
  times.push(performance.now() - t);
}
const rss1 = await settledRss(), fds1 = fds();
await dropSpareMemory();
if (!gc) console.log("(run with --v8-flags=--expose-gc for RSS after a full collection)");
console.log(`| measure | value |\n| --- | ---: |`);
console.log(
  `| in-process boot() → exit, static musl hello, median of ${N} (ms) | ${
    median(times).toFixed(2)
  } |`,
);
console.log(
  `| same, 10th / 90th percentile (ms) | ${pct(times, 0.1).toFixed(2)} / ${
    pct(times, 0.9).toFixed(2)
  } |`,
);
console.log(
  `| RSS after GC, before → after ${N} boots (MiB) | ${rss0.toFixed(1)} → ${rss1.toFixed(1)} (${
    rss1 - rss0 >= 0 ? "+" : ""
  }${(rss1 - rss0).toFixed(1)}) |`,
);
console.log(`| open fds, before → after | ${fds0} → ${fds1} |`);

// The whole CLI, as a user starts it, against an empty Deno script.
const root = new URL("../", import.meta.url).pathname;
const empty = await Deno.makeTempFile({ suffix: ".ts" });
const glibcHello = await compileC(
  "bench-hello-static",
  '#include <stdio.h>\nint main(void) { printf("hello, world\\n"); return 0; }\n',
  "gcc",
  ["-static"],
);
const deno = `${root}tools/deno`;
const commands: [string, string[]][] = [
  ["empty Deno script", ["run", "-A", empty]],
  ["cli.ts run static glibc hello", ["run", "-A", `${root}cli.ts`, "run", glibcHello]],
  ["cli.ts run python3 -c pass", [
    "run",
    "-A",
    `${root}cli.ts`,
    "run",
    "/usr/bin/python3",
    "-c",
    "pass",
  ]],
];
const hasTime = (() => {
  try {
    return Deno.statSync("/usr/bin/time").isFile;
  } catch {
    return false;
  }
})();
const wall: number[][] = commands.map(() => []), peak: number[][] = commands.map(() => []);
for (let i = 0; i < CLI_RUNS + 2; i++) {
  for (const [k, [, args]] of commands.entries()) {
    const t = performance.now();
    const r = await new Deno.Command(hasTime ? "/usr/bin/time" : deno, {
      args: hasTime ? ["-f", "%M", deno, ...args] : args,
      stdout: "null",
      stderr: "piped",
    }).output();
    const ms = performance.now() - t;
    if (!r.success) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
    if (i < 2) continue; // warm-up: Deno's caches filled
    wall[k].push(ms);
    if (hasTime) peak[k].push(Number(new TextDecoder().decode(r.stderr).trim().split("\n").pop()));
  }
}
await Deno.remove(empty);
console.log(
  `\n| whole process, median of ${CLI_RUNS} alternating runs | wall (ms) | peak RSS (MiB) |`,
);
console.log(`| --- | ---: | ---: |`);
for (const [k, [name]] of commands.entries()) {
  const rss = hasTime ? (median(peak[k]) / 1024).toFixed(1) : "–";
  console.log(`| ${name} | ${median(wall[k]).toFixed(1)} | ${rss} |`);
}
