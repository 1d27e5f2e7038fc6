// Start-up to exit of dynamic programs, native and hermitux side by side in
// one run: `python3 -c pass`, `lua5.4 -e ''` and a dynamic C hello. Prints
// medians and ratios (Markdown), then where hermitux's time goes for each:
// VM creation and loading, guest run time, and host calls by syscall.
// Each boot takes the RAM the boot before it left (GuestMemory.release);
// the last column gives every boot fresh RAM instead, as a process's first
// boot has.
//
//   deno task bench:startup
import { boot, dropSpareMemory, type HostCalls, type RunStats, spareMemoryReady } from "../mod.ts";
import { compileC } from "../tests/fixtures.ts";
import { devNull } from "./common.ts";

const RUNS = Number(Deno.env.get("STARTUP_RUNS") ?? 20);
const nul = devNull();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const SYSTEM = ["/usr", "/lib", "/lib64", "/etc", "/bin"]
  .filter((d) => {
    try {
      return Deno.statSync(d).isDirectory;
    } catch {
      return false;
    }
  })
  .map((d) => ({ host: d, guest: d, readOnly: true }));

async function native(path: string, args: string[]): Promise<number> {
  await spareMemoryReady(); // nothing of hermitux's runs beside it
  const t0 = performance.now();
  const r = await new Deno.Command(path, { args, stdout: "null", stderr: "null", env: {} })
    .output();
  if (!r.success) throw new Error(`${path} failed natively`);
  return performance.now() - t0;
}

async function guest(
  path: string,
  args: string[],
  rewrite: "off" | "lazy" = "off",
  hostCalls: HostCalls = "exitless",
  fresh = false,
): Promise<[number, RunStats]> {
  if (fresh) await dropSpareMemory();
  await spareMemoryReady();
  const t0 = performance.now();
  const stdio: [number, number, number] = [0, nul, nul];
  const r = await boot({ path, args, stdio, mounts: SYSTEM, cwd: "/", rewrite, hostCalls });
  if (r.status !== 0) throw new Error(`${path} failed under hermitux (${r.status})`);
  return [performance.now() - t0, r.stats];
}

// KVM's counters (RunStats.kvm): on kvm_pvm each page fault it fixes and
// each instruction it emulates (cpuid) costs about as much as an exit.
function kvmLine(s: RunStats): string {
  const k = s.kvm;
  if (!k.exits) return "no KVM counters (Linux < 5.14)";
  return `${k.exits} exits, ${k.pf_fixed ?? 0} page faults fixed, ` +
    `${k.insn_emulation ?? 0} instructions emulated, ${k.mmio_exits ?? 0} MMIO exits`;
}

const hello = await compileC(
  "bench-hello-dynamic",
  '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n',
  "gcc",
  [],
);
const cases: [string, string, string[]][] = [
  ["python3 -c pass", "/usr/bin/python3", ["-c", "pass"]],
  ["lua5.4 -e ''", "/usr/bin/lua5.4", ["-e", ""]],
  ["dynamic C hello (glibc)", hello, []],
];

// The transports and rewriting modes compared, each a column pair; the
// last with fresh RAM for every boot.
const CONFIGS: [HostCalls, "off" | "lazy", boolean][] = [
  ["exit", "off", false],
  ["exitless", "off", false],
  ["exitless", "lazy", false],
  ["exitless", "lazy", true],
];
const LAST = 2; // the configuration whose stats are shown
const rows: string[] = [];
const detail: string[] = [];
for (const [name, path, args] of cases) {
  for (let i = 0; i < 3; i++) await guest(path, args); // warm-up: page cache, JIT
  const n: number[] = [], h: number[][] = CONFIGS.map(() => []);
  let last: RunStats | undefined;
  for (let i = 0; i < RUNS; i++) {
    n.push(await native(path, args));
    for (const [k, [hostCalls, rewrite, fresh]] of CONFIGS.entries()) {
      const [ms, stats] = await guest(path, args, rewrite, hostCalls, fresh);
      h[k].push(ms);
      if (k === LAST) last = stats;
    }
  }
  const mn = median(n);
  rows.push(
    `| ${name} | ${mn.toFixed(2)} | ` +
      h.map((xs) => `${median(xs).toFixed(2)} | ${(median(xs) / mn).toFixed(2)}× |`).join(" "),
  );
  const s = last!;
  const hostMs = Object.values(s.syscallMs).reduce((a, b) => a + b, 0);
  const top = Object.entries(s.syscalls)
    .sort((a, b) => (s.syscallMs[b[0]] ?? 0) - (s.syscallMs[a[0]] ?? 0))
    .slice(0, 6)
    .map(([k, c]) => `${k} ×${c} ${(s.syscallMs[k] ?? 0).toFixed(2)} ms`)
    .join(", ");
  detail.push(
    `- ${name}: boot ${s.bootMs.toFixed(2)} ms (load ${s.loadMs.toFixed(2)} ms), run ` +
      `${s.runMs.toFixed(2)} ms with ${s.exits} exits and ${s.hostCalls} host calls, ` +
      `${s.exitless} exitless ` +
      `(${hostMs.toFixed(2)} ms in handlers); top: ${top}; inside KVM: ${kvmLine(s)}`,
  );
}

console.log(`Start-up to exit, median of ${RUNS} runs (ms; native = fork+exec from Deno)\n`);
console.log(
  "| program | native | " +
    CONFIGS.map(([h, r, f]) =>
      `${h}${r === "lazy" ? ", rewrite=lazy" : ""}${f ? ", fresh RAM" : ""} | ratio |`
    ).join(" "),
);
console.log("|---|---:|" + "---:|---:|".repeat(CONFIGS.length));
for (const r of rows) console.log(r);
console.log("\nWhere hermitux's time goes (last run, exitless with rewrite=lazy):\n");
for (const d of detail) console.log(d);
