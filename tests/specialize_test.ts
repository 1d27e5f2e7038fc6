// Specialization: a run restricted to the syscalls `analyze` finds behaves
// as natively (with --strict, any syscall outside the set would end it), a
// syscall outside an allow list is denied and named, and modules that serve
// nothing allowed are left out.
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { fixture, runHermitux, runNative, type Toolchain } from "./fixtures.ts";
import { DEFAULT_MODULES } from "../src/syscalls/mod.ts";
import { readAllowList, specializedRegistry } from "../src/syscalls/specialize.ts";
import { kernelHandler, kernelReach } from "../src/analysis/kernel.ts";
import { GUEST_SYSCALLS } from "../src/kernel/local.ts";
import { syscallName } from "../src/syscalls/table.ts";

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

Deno.test("the guest-kernel code a specialized VM can reach: its call graph from the allowed handlers", async () => {
  const dir = new URL("../src/kernel/", import.meta.url);
  const image = await Deno.readFile(new URL("kernel.bin", dir));
  const map = await Deno.readTextFile(new URL("kernel.map", dir));
  // Every entry of main.c's local[] names the function kernelHandler gives.
  const main = await Deno.readTextFile(new URL("main.c", dir));
  const entries = [...main.matchAll(/\[(\d+)\] = (sys_\w+),/g)];
  equal(entries.length, Object.keys(GUEST_SYSCALLS).length);
  for (const [, nr, fn] of entries) equal(kernelHandler(syscallName(Number(nr))), fn);
  const all = kernelReach(image, map, Object.keys(GUEST_SYSCALLS));
  const none = kernelReach(image, map, []);
  equal(all.reachable, all.total, `unreached: everything should be, with every syscall allowed`);
  ok(none.reachable < all.total / 2, `${none.reachable} of ${none.total}`);
  ok(none.functions.includes("ksyscall") && !none.functions.includes("sys_mmap"));
  const some = kernelReach(image, map, ["mmap"]);
  // sys_mmap brings the mapping list's helpers with it.
  ok(some.functions.includes("sys_mmap") && some.functions.includes("find_gap"));
  ok(some.reachable > none.reachable && some.reachable < all.reachable);
});

Deno.test("--specialize --verbose reports the guest-kernel code left", async () => {
  const r = await runHermitux(await fixture("hello", "musl-static"), [], {
    flags: ["--specialize", "--verbose"],
  });
  const m = /guest-kernel syscalls (\d+) of (\d+), code (\d+) of (\d+) bytes/.exec(r.stderr);
  ok(m, r.stderr);
  ok(Number(m[3]) < Number(m[4]));
});
