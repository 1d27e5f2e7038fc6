// The host probe (src/vm/hostprobe.ts): a tiny guest measures a VM exit
// and a syscall trap, the result is cached per host and read back rather
// than measured again, a damaged cache is measured anew, the defaults
// follow the numbers, and `run --verbose` says what was measured and where.
import { deepStrictEqual, doesNotMatch, equal, match, ok } from "node:assert/strict";
import { fixture, inTempDir } from "./fixtures.ts";
import {
  CHEAP_EXIT_US,
  COSTLY_TRAP_US,
  hostKey,
  loadHostProfile,
  measureHost,
  profilePath,
} from "../src/vm/hostprobe.ts";
import { defaultHostCalls, hostCallsReason } from "../src/vm/exitless.ts";
import { resolveRewrite } from "../src/vm/rewrite.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const PVM = await Deno.stat("/sys/module/kvm_pvm").then(() => true, () => false);

Deno.test("the probe measures an exit and a trap, in well under a second", async () => {
  await measureHost(); // the first boot of a process loads the kernel image
  const t0 = performance.now();
  const m = await measureHost();
  const ms = performance.now() - t0;
  ok(m.exitUs > 0.1 && m.exitUs < 5000, `exit ${m.exitUs} µs`);
  ok(m.trapUs > 0.01 && m.trapUs < 1000, `trap ${m.trapUs} µs`);
  // A host call by exit is a trap's worth of guest work and more.
  ok(m.exitUs > m.trapUs, JSON.stringify(m));
  ok(ms < 1000, `${ms} ms`);
});

Deno.test("measured once, then read from the cache; a damaged or foreign file is measured anew", async () => {
  await inTempDir(async (dir) => {
    const key = hostKey();
    const first = await loadHostProfile(key, dir);
    equal(first.fresh, true);
    equal(first.path, profilePath(dir, key));
    const stat = await Deno.stat(first.path!);
    const second = await loadHostProfile(key, dir);
    equal(second.fresh, false, "read back, not measured");
    deepStrictEqual([second.exitUs, second.trapUs, second.measuredAt], [
      first.exitUs,
      first.trapUs,
      first.measuredAt,
    ]);
    equal((await Deno.stat(first.path!)).mtime?.getTime(), stat.mtime?.getTime());
    // Another kernel, CPU count or probe version has a file of its own.
    const other = { ...key, cpus: key.cpus + 1 };
    ok(profilePath(dir, other) !== first.path);
    for (const junk of ["{not json", "null", "[]", JSON.stringify({ key: other, exitUs: 1 })]) {
      await Deno.writeTextFile(first.path!, junk);
      const again = await loadHostProfile(key, dir);
      equal(again.fresh, true, junk);
      deepStrictEqual(JSON.parse(await Deno.readTextFile(first.path!)).key, key);
    }
    const files = [...Deno.readDirSync(dir)].map((e) => e.name);
    deepStrictEqual(files, [first.path!.slice(dir.length + 1)], "no temporary file left");
  }, "probe");
});

Deno.test("without a writable cache directory the measurement stays in memory", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/file`, "");
    const p = await loadHostProfile(hostKey(), `${dir}/file/cache`);
    equal(p.fresh, true);
    equal(p.path, undefined);
    ok(p.exitUs > 0);
  }, "probe");
});

Deno.test("the defaults follow the measured costs", () => {
  const cheap = { exitUs: 2, trapUs: 0.1 }, dear = { exitUs: 45, trapUs: 15 };
  // Cheap exits: polling does not pay, whatever the platform or CPU count.
  equal(defaultHostCalls("kvm_pvm", 8, cheap), "exit");
  match(hostCallsReason("kvm_pvm", 8, cheap), new RegExp(`under ${CHEAP_EXIT_US} µs`));
  // Dear exits: by the CPU count, on any platform.
  equal(defaultHostCalls("svm", 1, dear), "exit");
  equal(defaultHostCalls("svm", 2, dear), "auto");
  equal(defaultHostCalls("kvm_pvm", 3, dear), "auto");
  equal(defaultHostCalls("vmx", 4, dear), "exitless");
  equal(defaultHostCalls("kvm_pvm", 16, dear), "exitless");
  equal(defaultHostCalls("kvm_pvm", 2, { exitUs: CHEAP_EXIT_US, trapUs: 1 }), "auto");
  // Rewriting only where a trap is dear.
  equal(resolveRewrite("auto", "kvm_pvm", dear).mode, "stub");
  equal(resolveRewrite(undefined, "svm", dear).mode, "stub");
  equal(resolveRewrite("auto", "kvm_pvm", { exitUs: 45, trapUs: 0.9 }).mode, "off");
  equal(resolveRewrite("auto", "kvm_pvm", { exitUs: 45, trapUs: COSTLY_TRAP_US }).mode, "stub");
  match(resolveRewrite("auto", "vmx", cheap).why, /0.1 µs \(under 3 µs\) does not pay/);
  // Asked for: always as asked.
  deepStrictEqual(resolveRewrite("lazy", "kvm_pvm", cheap), { mode: "lazy", why: "as asked" });
  // No measurement: the platform's rules, as before the probe.
  equal(defaultHostCalls("kvm_pvm", 2), "auto");
  equal(defaultHostCalls("vmx", 8), "exit");
  equal(resolveRewrite("auto", "kvm_pvm").mode, "stub");
});

/** `hermitux run ARGS` through main(), with the probe's cache in `dir` and `env` set. */
async function run(args: string[], dir: string, env: Record<string, string> = {}) {
  const script = await Deno.makeTempFile({ prefix: "hermitux-probe-main-", suffix: ".ts" });
  await Deno.writeTextFile(
    script,
    `import { main } from "${ROOT}src/cli/main.ts";\nDeno.exit(await main(Deno.args));\n`,
  );
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", script, "run", ...args],
    env: { HERMITUX_HOST_CALLS: "", HERMITUX_REWRITE: "", HERMITUX_HOST_PROBE: "", ...env },
  }).output().finally(() => Deno.remove(script));
  const probes = [...Deno.readDirSync(dir)].filter((e) => e.name.startsWith("host-"));
  return { code: r.code, err: new TextDecoder().decode(r.stderr), probes: probes.length };
}

Deno.test("run --verbose says what was measured, where it is cached, and what it chose", async () => {
  const hello = await fixture("hello", "musl-static");
  await inTempDir(async (dir) => {
    const env = { HERMITUX_CACHE_DIR: dir };
    // Everything asked for: no probe.
    const asked = await run(["--verbose", "--host-calls=exit", "--rewrite=off", hello], dir, env);
    equal(asked.code, 0);
    equal(asked.probes, 0);
    doesNotMatch(asked.err, /measured/);
    const first = await run(["--verbose", hello], dir, env);
    equal(first.code, 0, first.err);
    equal(first.probes, 1);
    const num = "[\\d.]+ µs";
    const head = `measured on this host: an exit ${num}, a syscall trap ${num}, \\d+ CPUs?`;
    match(
      first.err,
      new RegExp(`host calls \\w+ \\(${head}; measured now, cached in ${dir}/host-`),
    );
    const again = await run(["--verbose", hello], dir, env);
    match(again.err, new RegExp(`\\(${head}; cached \\d{4}-\\d\\d-\\d\\d in ${dir}/host-v1-`));
    if (PVM && navigator.hardwareConcurrency === 2) {
      // The development machine: what the platform's rules chose, now by measurement.
      match(again.err, /host calls auto \(.*: an exit over 20 µs, 2 CPUs: exits until/);
      match(again.err, /rewrite stub \(a syscall trap of [\d.]+ µs \(3 µs or more\) pays/);
    }
    // Host calls asked for: the measurement goes with the rewriting.
    const rw = await run(["--verbose", "--host-calls=exit", hello], dir, env);
    match(rw.err, new RegExp(`host calls exit \\(as asked\\), rewrite \\w+ \\(${head}; cached`));
  }, "probe");
  await inTempDir(async (dir) => {
    const off = await run(["--verbose", hello], dir, {
      HERMITUX_CACHE_DIR: dir,
      HERMITUX_HOST_PROBE: "off",
    });
    equal(off.code, 0);
    equal(off.probes, 0);
    doesNotMatch(off.err, /measured/);
    match(off.err, PVM ? /host calls \w+ \(kvm_pvm, / : /host calls exit \((vmx|svm): /);
  }, "probe");
});

Deno.test("processes that measure at once leave one whole file", async () => {
  const hello = await fixture("hello", "musl-static");
  await inTempDir(async (dir) => {
    const runs = await Promise.all(
      [1, 2, 3].map(() => run([hello], dir, { HERMITUX_CACHE_DIR: dir })),
    );
    deepStrictEqual(runs.map((r) => r.code), [0, 0, 0]);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    equal(names.length, 1, names.join(" "));
    const p = JSON.parse(await Deno.readTextFile(`${dir}/${names[0]}`));
    deepStrictEqual(p.key, hostKey());
    ok(p.exitUs > 0 && p.trapUs > 0, JSON.stringify(p));
  }, "probe");
});

Deno.test("boot's defaults come from the cached numbers: cheap exits and traps, no polling, no rewriting", async () => {
  const hello = await fixture("hello", "musl-static");
  await inTempDir(async (dir) => {
    const key = hostKey();
    const measuredAt = "2026-01-02T03:04:05.000Z";
    await Deno.writeTextFile(
      profilePath(dir, key),
      JSON.stringify({ key, exitUs: 1.5, trapUs: 0.2, measuredAt }),
    );
    const r = await run(["--verbose", "--stats", hello], dir, { HERMITUX_CACHE_DIR: dir });
    equal(r.code, 0, r.err);
    match(r.err, /host calls exit \(measured on this host: an exit 1.5 µs, a syscall trap 0.2 µs/);
    match(r.err, /cached 2026-01-02 in /);
    match(r.err, /rewrite off \(a syscall trap of 0.2 µs \(under 3 µs\)/);
    const stats = JSON.parse(/hermitux: stats (.*)/.exec(r.err)![1]);
    equal(stats.rewrite.mode, "off");
    equal(stats.exitless, 0);
  }, "probe");
});
