// Many boot()s in one process: each runs as the first did, the machine one
// run leaves serves the next (its KVM counters start again from zero), and
// memory and fds stay flat: 2,000 boots of a static hello in a process of
// their own, RSS measured after a full collection once the event loop has
// run (a bound on memory, not a timing).
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { boot, dropSpareMemory } from "../mod.ts";
import { takeSpareMachine } from "../src/vm/machine.ts";
import { libc } from "../src/kvm/libc.ts";
import { compileC, fixture } from "./fixtures.ts";

const OWN_PROCESS = Deno.env.get("HERMITUX_BOOT_REPEAT_OWN_PROCESS") === "1";
const BOOTS = Number(Deno.env.get("BOOT_REPEAT_N") ?? 2000);
const MANY = `${BOOTS} boot()s of a static hello in one process: RSS and fds stay flat`;
/**
 * What RSS may grow by over the boots, after a full collection. Before the
 * fixes it grew by ~0.1 MiB a boot: 134 MiB over 1,000 boots (a timer and
 * promises chained per boot, a 256 KiB buffer per VM, two 16 KiB buffers
 * per run for KVM's counters, V8's young generation grown to its maximum).
 */
const RSS_BOUND_MIB = 16;

/** The whole process's open fds. */
function fdCount(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

/** RSS after a full, memory-reducing collection (needs --v8-flags=--expose-gc). */
async function settledRss(): Promise<number> {
  // Timers and async ops (the prefault, a VM closed on a worker) end first.
  await new Promise((r) => setTimeout(r, 100));
  const gc = (globalThis as { gc?: (o: Record<string, string>) => void }).gc!;
  gc({ type: "major", execution: "sync", flavor: "last-resort" });
  return Deno.memoryUsage().rss / 2 ** 20;
}

Deno.test({ name: `${MANY} (in a process of its own)`, ignore: OWN_PROCESS }, async () => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "test",
      "-A",
      "--no-check",
      "--v8-flags=--expose-gc",
      "--filter",
      MANY,
      new URL(import.meta.url).pathname,
    ],
    env: { HERMITUX_BOOT_REPEAT_OWN_PROCESS: "1", NO_COLOR: "1" },
  }).output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  equal(r.code, 0, out.slice(-3000));
  ok(/ok \| 1 passed/.test(out), out.slice(-3000));
});

Deno.test({ name: MANY, ignore: !OWN_PROCESS }, async () => {
  const path = await fixture("hello", "musl-static");
  const nul = libc().open(new TextEncoder().encode("/dev/null\0"), 2 | 0x80000, 0);
  const stdio: [number, number, number] = [0, nul, nul];
  try {
    // Warm-up: code compiled, libc bound, the kernel image read, V8's heaps sized.
    for (let i = 0; i < 200; i++) equal((await boot({ path, stdio })).status, 0);
    const rss0 = await settledRss(), fds0 = fdCount();
    for (let i = 0; i < BOOTS; i++) {
      const r = await boot({ path, stdio });
      if (r.status !== 0) equal(r.status, 0, `boot ${i}`);
    }
    const rss1 = await settledRss(), fds1 = fdCount();
    console.log(`  RSS ${rss0.toFixed(1)} → ${rss1.toFixed(1)} MiB, fds ${fds0} → ${fds1}`);
    equal(fds1, fds0, "fds");
    ok(rss1 - rss0 <= RSS_BOUND_MIB, `RSS grew by ${(rss1 - rss0).toFixed(1)} MiB`);
  } finally {
    libc().close(nul);
    await dropSpareMemory();
  }
});

Deno.test("the next boot() takes the machine the last one left; its KVM counters start from zero", async () => {
  const path = await fixture("hello", "musl-static");
  const nul = libc().open(new TextEncoder().encode("/dev/null\0"), 2 | 0x80000, 0);
  const stdio: [number, number, number] = [0, nul, nul];
  try {
    await dropSpareMemory();
    const first = await boot({ path, stdio });
    equal(first.status, 0);
    // Kept: the next boot of a VM of this size takes it.
    const m = takeSpareMachine(1 << 30);
    ok(m, "the clean run's machine is kept");
    m!.dispose(true);
    await m!.teardown;
    const runs = [];
    for (let i = 0; i < 4; i++) runs.push(await boot({ path, stdio }));
    deepStrictEqual(runs.map((r) => r.status), [0, 0, 0, 0]);
    const exits = runs.map((r) => r.stats.kvm.exits).filter((n) => n !== undefined);
    // Counted per run, not summed over the runs the vCPU served (kernels before 5.14: none).
    for (const n of exits) ok(n < 2 * exits[0] + 50, `KVM exits per run: ${exits}`);
  } finally {
    libc().close(nul);
    await dropSpareMemory();
  }
});

Deno.test("a crashed guest's machine is not kept for the next boot()", async () => {
  await dropSpareMemory();
  const path = await compileC(
    "null-write",
    "int main(void) { *(volatile int *)0 = 1; return 0; }\n",
    "musl-gcc",
    ["-static"],
  );
  const r = await boot({ path, onDiagnostic: () => {} });
  ok(r.crash !== undefined, "crashed");
  equal(takeSpareMachine(1 << 30), undefined);
  await dropSpareMemory();
});
