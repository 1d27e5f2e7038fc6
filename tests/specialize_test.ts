// Specialization: a run restricted to the syscalls `analyze` finds behaves
// as natively (with --strict, any syscall outside the set would end it), a
// syscall outside an allow list is denied and named, and modules that serve
// nothing allowed are left out.
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { fixture, runHermitux, runNative, type Toolchain } from "./fixtures.ts";
import { DEFAULT_MODULES } from "../src/syscalls/mod.ts";
import { readAllowList, specializedRegistry } from "../src/syscalls/specialize.ts";

const PROGRAMS = ["hello", "malloc", "brk", "tls", "clock", "mmap", "cat", "pipes", "time_sleep"];

for (const tc of ["musl-static", "glibc-static", "glibc-dynamic"] as Toolchain[]) {
  Deno.test(`${tc}: programs run as natively under --specialize --strict`, async () => {
    for (const name of PROGRAMS) {
      const bin = await fixture(name, tc);
      const o = name === "cat" ? { stdin: "some input\n" } : {};
      const [native, vm] = await Promise.all([
        runNative(bin, [], o),
        runHermitux(bin, [], { ...o, flags: ["--specialize", "--strict"] }),
      ]);
      // A dynamic glibc has two setxid sites the analysis cannot resolve; it says so.
      const stderr = vm.stderr.replace(/^hermitux: analysis incomplete .*\n/m, "");
      deepStrictEqual({ ...vm, stderr }, native, name);
    }
  });
}

Deno.test("a syscall outside --allow-syscalls is ENOSYS, named once; --strict ends the run", async () => {
  const bin = await fixture("hello", "musl-static");
  const list = await Deno.makeTempFile({ suffix: ".json" });
  try {
    // musl's hello needs ioctl (isatty) and writev; without them it cannot print.
    await Deno.writeTextFile(
      list,
      JSON.stringify(["exit_group", "exit", "set_tid_address", "arch_prctl"]),
    );
    const soft = await runHermitux(bin, [], { flags: ["--allow-syscalls", list] });
    equal(soft.code, 0);
    equal(soft.stdout, "");
    match(soft.stderr, /^hermitux: syscall ioctl \(16\) denied: not in the allowed set$/m);
    match(soft.stderr, /^hermitux: syscall writev \(20\) denied: not in the allowed set$/m);
    const strict = await runHermitux(bin, [], { flags: ["--allow-syscalls", list, "--strict"] });
    equal(strict.code, 159); // SIGSYS, as a seccomp kill
    match(strict.stderr, /denied: not in the allowed set/);
  } finally {
    await Deno.remove(list);
  }
});

Deno.test("the analysis JSON is an allow list; unneeded modules are not loaded", async () => {
  const bin = await fixture("hello", "musl-static");
  const json = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      new URL("../cli.ts", import.meta.url).pathname,
      "analyze",
      "--json",
      bin,
    ],
    stdout: "piped",
  }).output();
  const allowed = readAllowList(new TextDecoder().decode(json.stdout));
  equal(allowed.length, 12);
  const { registry, report } = specializedRegistry(DEFAULT_MODULES, allowed);
  ok(!report.modules.loaded.includes("net") && !report.modules.loaded.includes("xattr"));
  ok(report.modules.loaded.includes("stdio"));
  equal(report.allowed, 12);
  ok(registry.isOverridden(41), "socket is denied (and routed past the guest kernel)");
  ok(!registry.isOverridden(20), "writev is served");
  deepStrictEqual(readAllowList('["read", 60]'), [0, 60]);
});
