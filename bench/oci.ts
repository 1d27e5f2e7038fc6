// `ctr run --rm` of the busybox echo image (tests/oci/containerd.ts builds
// it offline) with runc and with hermitux (bin/hermitux-oci): wall time of
// the ctr command, median of ROUNDS runs each, interleaved. A private
// containerd; needs root, containerd, ctr, umoci and runc (tests/setup.sh).
// `deno run -A bench/oci.ts [ROUNDS]`; docs/OCI.md has a run.
import {
  IMAGE,
  importBusybox,
  missing,
  RUNTIME,
  startContainerd,
} from "../tests/oci/containerd.ts";

const why = missing();
if (why) {
  console.error(`bench/oci.ts: ${why}`);
  Deno.exit(1);
}
const rounds = Number(Deno.args[0] ?? 7);
const dir = await Deno.makeTempDir({ prefix: "hermitux-oci-bench-" });
try {
  await using c = await startContainerd(dir);
  await importBusybox(c, dir);
  const times: Record<string, number[]> = { runc: [], hermitux: [] };
  let n = 0;
  for (let i = 0; i <= rounds; i++) {
    for (const [name, flags] of [["runc", []], ["hermitux", ["--runc-binary", RUNTIME]]] as const) {
      const t0 = performance.now();
      const r = await c.ctr(["run", "--rm", ...flags, IMAGE, `b${n++}`]);
      const ms = performance.now() - t0;
      if (r.code !== 0 || r.stdout !== "hi\n") throw new Error(`${name}: ${r.code} ${r.stderr}`);
      if (i > 0) times[name].push(ms); // the first round warms caches
    }
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const [name, xs] of Object.entries(times)) {
    console.log(
      `${name.padEnd(9)} median ${median(xs).toFixed(0)} ms  (min ${Math.min(...xs).toFixed(0)}, ` +
        `max ${Math.max(...xs).toFixed(0)}, ${xs.length} runs)`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
