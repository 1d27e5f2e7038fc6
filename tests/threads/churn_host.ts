// Run by threads_test.ts in a process of its own: boots a 1,000-thread
// churn twice after a warm-up, then 30 short runs, and prints the host's thread, fd and RSS
// counts before and after, as JSON.
import { boot } from "../../mod.ts";
import { libc } from "../../src/kvm/libc.ts";

/** The host's threads by name (comm), for a failure to say which stayed. */
function threadNames(): string {
  const names: Record<string, number> = {};
  for (const t of Deno.readDirSync("/proc/self/task")) {
    try {
      const comm = Deno.readTextFileSync(`/proc/self/task/${t.name}/comm`).trim();
      names[comm] = (names[comm] ?? 0) + 1;
    } catch {
      // gone while listed
    }
  }
  return Object.entries(names).map(([n, c]) => `${n} ×${c}`).join(", ");
}

function hostCounts(): { threads: number; fds: number; rssKiB: number; names: string } {
  // JS garbage is not what this looks for: collect it first (--expose-gc).
  (globalThis as { gc?: () => void }).gc?.();
  const status = Deno.readTextFileSync("/proc/self/status");
  return {
    threads: Number(/^Threads:\s+(\d+)/m.exec(status)![1]),
    fds: [...Deno.readDirSync("/proc/self/fd")].length,
    rssKiB: Number(/^VmRSS:\s+(\d+)/m.exec(status)![1]),
    names: threadNames(),
  };
}

const bin = Deno.args[0];
{
  const devNull = libc().open(new TextEncoder().encode("/dev/null\0"), 2 | 0x80000, 0);
  try {
    const run = async (n: number) => {
      const r = await boot({ path: bin, args: [String(n)], stdio: [0, devNull, 2] });
      if (r.status !== 0) throw new Error(`churn exited ${r.status}`);
      // Terminated workers' threads (and their fds) take a moment to go; an
      // idle thread of Deno's blocking pool (tokio) lingers for 10 s, so a
      // count above the base is given 12 s to settle before it counts.
      let last = hostCounts();
      for (let i = 0; i < 240; i++) {
        await new Promise((ok) => setTimeout(ok, 50));
        const now = hostCounts();
        if (now.threads <= base && now.threads === last.threads && now.fds === last.fds) break;
        last = now;
      }
      return hostCounts();
    };
    let base = Infinity;
    await run(50); // warm-up: JIT, kernel image, first workers
    const before = hostCounts();
    base = before.threads;
    const after = await run(1000);
    const again = await run(1000);
    // Many short runs: each run's runners must all have left by its end
    // (a runner that raced the end of a run used to stay behind, stuck).
    for (let i = 0; i < 29; i++) {
      const r = await boot({ path: bin, args: ["1"], stdio: [0, devNull, 2] });
      if (r.status !== 0) throw new Error(`churn exited ${r.status}`);
    }
    const short = await run(1);
    console.log(JSON.stringify({ before, after, again, short }));
  } finally {
    libc().close(devNull);
  }
}
