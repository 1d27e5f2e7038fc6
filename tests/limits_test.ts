// Resource limits as grants (--max-fds, --max-file-size, --cpu-time,
// --max-threads), seen from inside the guest as the Linux rlimits and
// compared with native runs under prlimit(1) setting the same limits.
import { deepStrictEqual, equal } from "node:assert/strict";
import { fixture, inTempDir, runHermitux, runNative, type Toolchain } from "./fixtures.ts";

const BUILDS: Toolchain[] = ["musl-static", "glibc-static", "glibc-dynamic"];

/** The fixture natively under `prlimit LIMIT` and under hermitux with `flags`, in a fresh directory each. */
async function compare(tc: Toolchain, mode: string, limit: string, flags: string[]) {
  const bin = await fixture("limits", tc);
  const [native, vm] = await Promise.all([
    inTempDir((cwd) => runNative("/usr/bin/prlimit", [limit, bin, mode], { cwd })),
    inTempDir((cwd) => runHermitux(bin, [mode], { cwd, flags })),
  ]);
  deepStrictEqual(vm, native);
  return vm;
}

for (const tc of BUILDS) {
  Deno.test(`${tc}: --max-fds is RLIMIT_NOFILE (EMFILE at it, also once the guest lowers it)`, async () => {
    const out = await compare(tc, "nofile", "--nofile=64:64", ["--max-fds", "64"]);
    equal(out.stdout.split("\n")[0], "nofile 64 64");
  });

  Deno.test(`${tc}: --max-file-size is RLIMIT_FSIZE (short writes, EFBIG, SIGXFSZ)`, async () => {
    const out = await compare(tc, "fsize", "--fsize=10000:10000", ["--max-file-size", "10000"]);
    equal(out.code, 128 + 25); // SIGXFSZ's default action, last
  });

  Deno.test(`${tc}: --cpu-time is RLIMIT_CPU (SIGXCPU, then SIGKILL)`, async () => {
    const out = await compare(tc, "cpu", "--cpu=1:2", ["--cpu-time", "1"]);
    deepStrictEqual([out.stdout, out.code], ["cpu 1 2\nSIGXCPU\nspinning on\n", 137]);
  });
}

// Root is exempt from RLIMIT_NPROC natively (and may raise hard limits): these
// run under hermitux alone, where the grant binds whatever the guest's uid.
for (const tc of BUILDS) {
  Deno.test(`${tc}: --max-threads is RLIMIT_NPROC: threads and fork past it are EAGAIN`, async () => {
    const bin = await fixture("limits", tc);
    const r = await runHermitux(bin, ["nproc"], { flags: ["--max-threads", "4"] });
    deepStrictEqual([r.stdout, r.stderr, r.code], [
      "nproc 4 4\nthreads started 3, then EAGAIN\nfork at the limit: EAGAIN\n" +
      "setrlimit NPROC 2: 0\nthreads started 1, then EAGAIN\n",
      "",
      0,
    ]);
  });

  Deno.test(`${tc}: a guest may lower a granted limit and raise it back, never past the grant`, async () => {
    const bin = await fixture("limits", tc);
    const r = await runHermitux(bin, ["raise"], { flags: ["--max-fds", "64"] });
    deepStrictEqual([r.stdout, r.stderr, r.code], [
      "nofile 64 64\n" +
      "raise hard past the grant: -1 EPERM\n" +
      "raise to infinity: -1 EPERM\n" +
      "lower soft: 0\n" +
      "raise soft back: 0\n" +
      "lower hard: 0\n" +
      // Root may raise a hard limit again (up to the grant), as on Linux.
      "raise hard back to the grant: 0\n" +
      "nofile 64 64\n",
      "",
      0,
    ]);
  });
}

Deno.test("the default RLIMIT_NOFILE: 1024 (soft: the host's, if lower)", async () => {
  const bin = await fixture("limits", "musl-static");
  const r = await runHermitux(bin, ["raise"]);
  const host = Number(new TextDecoder().decode(
    (await new Deno.Command("sh", { args: ["-c", "ulimit -n"] }).output()).stdout,
  ));
  equal(r.stdout.split("\n")[0], `nofile ${Math.min(host, 1024)} 1024`);
});
