// Hostile guests (tests/c/hostile.c): the program overwrites what the guest
// kernel keeps (its code and data, the host-call block, the page-table pool,
// the per-vCPU pages) and forges host-call requests. Whatever it does, the
// host throws nothing, leaks no fd and ends every run with a status (a crash
// report where it died). By default 10^5 forged requests over both transports,
// 24 corrupted guest kernels and 12 pools; HERMITUX_HOSTILE_SCALE multiplies the seeds.
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { fixture } from "./fixtures.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SCALE = Number(Deno.env.get("HERMITUX_HOSTILE_SCALE") ?? "1");

interface Report {
  statuses: Record<string, number>;
  crashes: number;
  errors: string[];
  before: number;
  after: number;
  diagnostics: string[];
}

async function hostile(mode: string, seeds: number, n: number, hostCalls: string, first = 1) {
  const bin = await fixture("hostile", "musl-static");
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      `${ROOT}tests/tools/hostile_runner.ts`,
      bin,
      mode,
      String(first),
      String(seeds),
      String(n),
      hostCalls,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout), err = new TextDecoder().decode(r.stderr);
  equal(r.code, 0, err.slice(-3000));
  const line = out.split("\n").find((l) => l.startsWith("REPORT "));
  ok(line, `no report: ${out.slice(-2000)} ${err.slice(-2000)}`);
  const report = JSON.parse(line.slice(7)) as Report;
  deepStrictEqual(report.errors, [], "the host threw");
  // (A VM torn down in the background may still hold its fd when counting starts.)
  ok(report.after <= report.before, `fds leaked: ${report.before} -> ${report.after}`);
  const runs = Object.values(report.statuses).reduce((a, b) => a + b, 0);
  equal(runs, seeds + 1); // and the warm-up
  return report;
}

for (const hostCalls of ["exit", "exitless"]) {
  Deno.test(`forged host-call requests (${hostCalls}): the host holds`, async () => {
    await hostile("forge", 10 * SCALE, 5000, hostCalls);
  });

  Deno.test(`the guest kernel overwritten with random bytes (${hostCalls}): every run ends with a report`, async () => {
    const r = await hostile("kernel", 12 * SCALE, 300, hostCalls, hostCalls === "exit" ? 1 : 1001);
    ok(r.crashes > 0, "some runs crashed");
  });

  Deno.test(`the page-table pool and per-vCPU pages scribbled over (${hostCalls}): the host holds`, async () => {
    await hostile("pool", 6 * SCALE, 2000, hostCalls, hostCalls === "exit" ? 1 : 1001);
  });
}
