// --profile and BootOptions.profile: a fixture whose two hot functions burn
// CPU 3:1 shows that ratio in the folded stacks (±10 %), whole stacks
// through frame pointers, host calls as "[host] NAME", a flame graph SVG;
// through the exit transport (the host timer stops the vCPU) and the
// exitless one (a runner's vCPU is kicked out for each sample).
import { equal, match, ok } from "node:assert/strict";
import {
  compileC,
  fixture,
  inTempDir,
  runHermitux,
  runNative,
  type Toolchain,
  TOOLCHAINS,
} from "./fixtures.ts";
import { boot } from "../mod.ts";
import { flameGraph } from "../src/profile/flamegraph.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** prof_hot built with `extra` flags (frame pointers or not). */
async function hot(tc: Toolchain, extra: string[]): Promise<string> {
  const src = await Deno.readTextFile(`${ROOT}tests/c/prof_hot.c`);
  const { cc, flags } = TOOLCHAINS[tc];
  return compileC(`prof_hot-${tc}${extra.join("")}`, src, cc, [...flags, ...extra]);
}

const FRAME_POINTERS = ["-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer"];

/** Samples whose innermost frame starts with `fn` (gcc may name it fn.constprop.0). */
function leafCount(folded: string, fn: string): number {
  let n = 0;
  for (const line of folded.split("\n")) {
    const m = /^(.*) (\d+)$/.exec(line);
    if (!m) continue;
    const leaf = m[1].split(";").at(-1)!;
    if (leaf === fn || leaf.startsWith(`${fn}.`)) n += Number(m[2]);
  }
  return n;
}

/** hot_a's samples are 3× hot_b's, ± `tolerance`. */
function assertThreeToOne(folded: string, tolerance = 0.1): void {
  const a = leafCount(folded, "hot_a"), b = leafCount(folded, "hot_b");
  ok(b > 50, `too few samples of hot_b (${b}):\n${folded}`);
  const ratio = a / b, pct = tolerance * 100;
  ok(
    ratio >= 3 * (1 - tolerance) && ratio <= 3 * (1 + tolerance),
    `hot_a:hot_b = ${a}:${b} = ${ratio.toFixed(2)}, not 3 ±${pct}%`,
  );
}

Deno.test("--profile: 3:1 hot functions, whole stacks, [host] write, a flame graph", async () => {
  const bin = await hot("glibc-static", FRAME_POINTERS);
  await inTempDir(async (dir) => {
    const args = ["300", "3000"];
    const [native, vm] = await Promise.all([
      runNative(bin, args),
      runHermitux(bin, args, { flags: [`--profile=${dir}/p.svg`, "--profile-hz", "1999"] }),
    ]);
    equal(vm.stdout, native.stdout);
    equal(vm.code, 0);
    match(vm.stderr, /^hermitux: profile: \d+ samples at 1999 Hz: .*p\.svg, .*p\.folded\n$/);
    const folded = await Deno.readTextFile(`${dir}/p.folded`);
    assertThreeToOne(folded);
    // Frame pointers give the whole stack: the program's name, main, the function.
    match(folded, /^prof_hot-[^;]*;(?:[^;]+;)*main;hot_a(?:\.[^; ]+)? \d+$/m);
    match(folded, /;write;\[host\] write \d+$/m);
    const svg = await Deno.readTextFile(`${dir}/p.svg`);
    match(svg, /^<\?xml version="1\.0" standalone="no"\?>\n<svg /);
    match(svg, /<title>hot_a[^<]* \(\d+ samples, [\d.]+%\)<\/title>/);
    match(svg, /<\/svg>\n$/);
  }, "profile");
});

Deno.test("BootOptions.profile, exitless: each sample kicks a runner's vCPU out", async () => {
  const bin = await hot("musl-static", []); // no frame pointers: leaves are named all the same
  const r = await boot({ path: bin, args: ["500"], profile: { hz: 1999 }, hostCalls: "exitless" });
  equal(r.status, 0);
  ok(
    r.profile && r.profile.hz === 1999 && r.profile.samples > 200,
    `${r.profile?.samples} samples`,
  );
  // The exitless loop ticks late under load (~250 a second of the 1,999
  // asked here, fewer with the test run's other work): fewer samples, so a
  // wider band (3 sigma of ~400 samples); the CLI test above holds 10 %.
  assertThreeToOne(r.profile.folded(), 0.3);
});

Deno.test("stacks unwound through .eh_frame: main -> libc's qsort -> the comparison", async () => {
  // glibc's qsort has no frame pointers: only its unwind table leads back to main.
  const bin = await fixture("prof_qsort", "glibc-dynamic");
  await inTempDir(async (dir) => {
    const [native, vm] = await Promise.all([
      runNative(bin, ["20"]),
      runHermitux(bin, ["20"], { flags: [`--profile=${dir}/q.svg`, "--profile-hz", "499"] }),
    ]);
    equal(vm.stdout, native.stdout);
    const folded = await Deno.readTextFile(`${dir}/q.folded`);
    match(
      folded,
      /^prof_qsort-[^;]*;_start;__libc_start_main;(?:[^;]+;)*main;qsort(?:_r)?(?:;[^;]+)*;cmp_slow \d+$/m,
    );
  }, "profile");
});

Deno.test("flameGraph: boxes as wide as their share, names escaped, empty input", () => {
  const svg = flameGraph("a;b 3\na;c<d> 1\n", { title: "t", width: 420 });
  // 400 px for 4 samples: b is 300 px wide, c<d> 100 px.
  match(svg, /<title>b \(3 samples, 75\.00%\)<\/title><rect x="10\.0" y="\d+" width="300\.0"/);
  match(svg, /<title>c&#60;d&#62; \(1 sample, 25\.00%\)<\/title><rect x="310\.0"/);
  match(flameGraph(""), /no samples/);
});

Deno.test("--profile-hz out of range: a one-line usage error", async () => {
  const bin = await hot("musl-static", []);
  const r = await runHermitux(bin, ["1"], { flags: ["--profile-hz", "0"] });
  equal(r.code, 2);
  match(r.stderr, /^hermitux: bad --profile-hz '0' \(1 to 10000\)\n$/);
});
