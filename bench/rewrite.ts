// What syscall rewriting's default (--rewrite=auto: stub on kvm_pvm) buys,
// against --rewrite=off, through the CLI as a user runs it, with both host-
// call transports: python3 -c pass, loops of getpid() and write() to
// /dev/null through libc's wrappers, and dd. Each row alternates the two
// settings after a warm-up pair and reports medians of PAIRS pairs (whole
// process, wall clock), and for the loops the guest's own ns per call.
// The numbers in docs/REWRITING.md come from here.
//
//   ./tools/deno run -A bench/rewrite.ts [PAIRS]
import { compileC } from "../tests/fixtures.ts";

const PAIRS = Number(Deno.args[0] ?? 5);
const ROOT = new URL("../", import.meta.url).pathname;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const LOOP = `
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main(int argc, char **argv) {
	long n = atol(argv[2]), s = 0;
	int fd = open("/dev/null", O_WRONLY);
	double t0 = now();
	if (!strcmp(argv[1], "getpid")) for (long i = 0; i < n; i++) s += getpid();
	else for (long i = 0; i < n; i++) s += write(fd, "x", 1);
	fprintf(stderr, "%.1f ns/call\\n", (now() - t0) / n);
	return s == 0;
}`;

interface Row {
  name: string;
  argv: string[];
  /** Reads the guest's own ns per call from stderr. */
  perCall?: boolean;
}

async function run(argv: string[], flags: string[]): Promise<{ ms: number; stderr: string }> {
  const t0 = performance.now();
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${ROOT}cli.ts`, "run", ...flags, ...argv],
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t0;
  const stderr = new TextDecoder().decode(r.stderr);
  if (!r.success) throw new Error(`${argv.join(" ")} ${flags.join(" ")}: ${stderr}`);
  return { ms, stderr };
}

async function native(argv: string[]): Promise<number> {
  const t0 = performance.now();
  await new Deno.Command(argv[0], { args: argv.slice(1), stdout: "null", stderr: "null" })
    .output();
  return performance.now() - t0;
}

const loop = await compileC("bench-rewrite-loop", LOOP, "gcc", []);
const rows: Row[] = [
  { name: "python3 -c pass", argv: ["/usr/bin/python3", "-c", "pass"] },
  { name: "getpid() x 100k", argv: [loop, "getpid", "100000"], perCall: true },
  { name: "write(/dev/null) x 20k", argv: [loop, "write", "20000"], perCall: true },
  {
    name: "dd bs=4k count=20000",
    argv: ["/usr/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=4k", "count=20000"],
  },
];

const ns = (s: string) => Number(/([\d.]+) ns\/call/.exec(s)?.[1] ?? NaN);
console.log(`${PAIRS} pairs each, medians; default = no --rewrite flag (auto)\n`);
console.log(
  "| work | transport | native | default | --rewrite=off | off / default | guest ns/call (default / off) |",
);
console.log("|---|---|---|---|---|---|---|");
for (const row of rows) {
  const nat = [] as number[];
  for (let i = 0; i < 3; i++) nat.push(await native(row.argv));
  for (const transport of ["exit", "exitless"]) {
    const flags = [`--host-calls=${transport}`];
    const def: number[] = [], off: number[] = [], defNs: number[] = [], offNs: number[] = [];
    await run(row.argv, flags); // warm-up: page cache, fixture
    for (let i = 0; i < PAIRS; i++) {
      // Alternate which goes first.
      const order = i % 2 ? ["off", "def"] : ["def", "off"];
      for (const which of order) {
        const r = await run(row.argv, which === "off" ? [...flags, "--rewrite=off"] : flags);
        (which === "off" ? off : def).push(r.ms);
        (which === "off" ? offNs : defNs).push(ns(r.stderr));
      }
    }
    const d = median(def), o = median(off);
    console.log(
      `| ${row.name} | ${transport} | ${median(nat).toFixed(0)} ms | ${d.toFixed(0)} ms | ${
        o.toFixed(0)
      } ms | ${(o / d).toFixed(2)}× | ${
        row.perCall ? `${median(defNs).toFixed(0)} / ${median(offNs).toFixed(0)}` : ""
      } |`,
    );
  }
}
