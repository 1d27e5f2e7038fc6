// Run by threads_test.ts in a process of its own: boots a 1,000-thread
// churn twice after a warm-up, then 30 short runs, and prints the host's thread, fd and RSS
// counts before and after, as JSON.
import { boot } from "../../mod.ts";
import { libc } from "../../src/kvm/libc.ts";

function hostCounts(): { threads: number; fds: number; rssKiB: number } {
  // JS garbage is not what this looks for: collect it first (--expose-gc).
  (globalThis as { gc?: () => void }).gc?.();
  const status = Deno.readTextFileSync("/proc/self/status");
  return {
    threads: Number(/^Threads:\s+(\d+)/m.exec(status)![1]),
    fds: [...Deno.readDirSync("/proc/self/fd")].length,
    rssKiB: Number(/^VmRSS:\s+(\d+)/m.exec(status)![1]),
  };
}

const bin = Deno.args[0];
{
  const devNull = libc().open(new TextEncoder().encode("/dev/null\0"), 2 | 0x80000, 0);
  try {
    const run = async (n: number) => {
      const r = await boot({ path: bin, args: [String(n)], stdio: [0, devNull, 2] });
      if (r.status !== 0) throw new Error(`churn exited ${r.status}`);
      // Terminated workers' threads (and their fds) take a moment to go.
      let last = hostCounts();
      for (let i = 0; i < 50; i++) {
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
