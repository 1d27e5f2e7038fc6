// The platform subset: run in-process (no Deno start-up per case, which is
// slow under emulation) on whatever /dev/kvm this machine has, compared
// with native runs. tests/hwkvm/run.sh runs it on an emulated AMD SVM
// machine; the main suite runs it on kvm_pvm.
import { equal, match, ok } from "node:assert/strict";
import { boot, detectPlatform, type RunResult } from "../../mod.ts";
import { libc } from "../../src/kvm/libc.ts";
import { compileC, fixture, runNative, type Toolchain } from "../fixtures.ts";
import { benchBinary } from "../../bench/common.ts";
import { debug } from "../gdb_run.ts";

const O_RDWR = 2, O_CREAT = 0o100, O_TRUNC = 0o1000, O_CLOEXEC = 0x80000;

/** A host fd on a fresh temp file holding `data`. */
async function tempFd(data = ""): Promise<[number, string]> {
  const path = await Deno.makeTempFile();
  await Deno.writeTextFile(path, data);
  const fd = libc().open(
    new TextEncoder().encode(path + "\0"),
    O_RDWR | O_CREAT | O_TRUNC * (data ? 0 : 1) | O_CLOEXEC,
    0o600,
  );
  ok(fd >= 0, `open ${path}`);
  return [fd, path];
}

/** Boots `path` with stdio on temp files; returns what a native run returns. */
async function inVm(
  path: string,
  args: string[] = [],
  stdin = "",
  env = {},
  rewrite: "off" | "stub" | "lazy" | "static" = "off",
  hostCalls?: "exit" | "exitless",
  dir?: string,
) {
  const [i, o, e] = [await tempFd(stdin), await tempFd(), await tempFd()];
  const diagnostics: string[] = [];
  let result: RunResult;
  try {
    result = await boot({
      path,
      args,
      env,
      stdio: [i[0], o[0], e[0]],
      onDiagnostic: (m) => diagnostics.push(m),
      rewrite,
      hostCalls,
      ...(dir ? { mounts: [{ host: dir, guest: "/work", readOnly: false }], cwd: "/work" } : {}),
    });
  } finally {
    for (const [fd] of [i, o, e]) libc().close(fd);
  }
  const [stdout, stderr] = [await Deno.readTextFile(o[1]), await Deno.readTextFile(e[1])];
  for (const [, p] of [i, o, e]) await Deno.remove(p);
  return { outcome: { stdout, stderr, code: result.status }, result, diagnostics };
}

/** Runs `path` natively and in a VM, in a scratch working directory with `inDir`. */
async function same(path: string, args: string[] = [], stdin = "", env = {}, inDir = false) {
  const dir = inDir ? await Deno.makeTempDir({ prefix: "hermitux-hw-" }) : undefined;
  const native = await runNative(path, args, { stdin, env, cwd: dir });
  const vm = await inVm(path, args, stdin, env, "off", undefined, dir);
  if (dir) await Deno.remove(dir, { recursive: true });
  // Line by line first: a long output's diff is cut short ("...") before the line that differs.
  const [got, want] = [vm.outcome.stdout.split("\n"), native.stdout.split("\n")];
  const at = want.findIndex((line, i) => got[i] !== line);
  equal(
    at < 0 ? undefined : `line ${at + 1}: ${got[at]}`,
    at < 0 ? undefined : `line ${at + 1}: ${want[at]}`,
  );
  equal(vm.outcome.stdout, native.stdout);
  equal(vm.outcome.stderr, native.stderr);
  equal(vm.outcome.code, native.code);
  return vm;
}

const platform = detectPlatform();
/** Set by tests/hwkvm/run.sh in its QEMU guest, whose /dev/kvm must be kvm_amd's. */
const inHwkvm = Deno.env.get("HWKVM_GUEST") === "1";
const ROOT = new URL("../../", import.meta.url).pathname;
const toolchains: Toolchain[] = ["musl-static", "glibc-static", "glibc-static-pie"];

for (const tc of toolchains) {
  Deno.test(`[${platform}] ${tc}: hello, argv/env, exit codes, stdin`, async () => {
    equal((await same(await fixture("hello", tc))).outcome.stdout, "hello, world\n");
    await same(await fixture("args_env", tc), ["a", "b c"], "", { K: "v", E: "" });
    for (const code of ["0", "1", "3", "255"]) await same(await fixture("exit_code", tc), [code]);
    await same(await fixture("cat", tc), [], "stdin line\n".repeat(500));
  });

  Deno.test(`[${platform}] ${tc}: memory, TLS, clocks`, async () => {
    for (const name of ["malloc", "brk", "tls", "clock", "syscalls", "mmap"]) {
      equal((await same(await fixture(name, tc))).outcome.code, 0, name);
    }
    // Protections: page tables the host changes under a running guest.
    equal((await same(await fixture("mprotect", tc), [], "", {}, true)).outcome.code, 0);
    // The vDSO's clocks, in a fork child too (its part that needs no execve: no mounts here).
    equal((await same(await fixture("vdso", tc), ["exec"])).outcome.code, 0);
  });

  Deno.test(`[${platform}] ${tc}: the address space above RAM, backed on first touch`, async () => {
    const vm = await same(await fixture("high_map", tc));
    equal(vm.outcome.code, 0);
  });

  Deno.test(`[${platform}] ${tc}: signals: handlers, faults, FPU state, timers, stack overflow`, async () => {
    const names = ["sig_handler", "sig_fault", "sig_fpu", "sig_timer", "stack_overflow"];
    for (const name of names) {
      equal((await same(await fixture(name, tc))).outcome.code, 0, name);
    }
    equal((await same(await fixture("sig_default", tc), ["abort"])).outcome.code, 134);
  });

  Deno.test(`[${platform}] ${tc}: processes: fork, wait, kill, SIGCHLD, groups`, async () => {
    const vm = await same(await fixture("proc_signals", tc));
    equal(vm.outcome.code, 0);
    ok(vm.result.processes > 5, `${vm.result.processes} processes`);
  });

  Deno.test(`[${platform}] ${tc}: vfork children on their parent's machine (loan.ts)`, async () => {
    const bin = await fixture("proc_vfork_loan", tc);
    const dir = bin.slice(0, bin.lastIndexOf("/"));
    const native = await runNative(bin, ["20"]);
    const [o, e] = [await tempFd(), await tempFd()];
    let result: RunResult;
    try {
      result = await boot({
        path: bin,
        args: ["20"],
        stdio: [0, o[0], e[0]],
        mounts: [{ host: dir, guest: dir, readOnly: true }],
        rewrite: "off",
      });
    } finally {
      for (const [fd] of [o, e]) libc().close(fd);
    }
    const stdout = await Deno.readTextFile(o[1]), stderr = await Deno.readTextFile(e[1]);
    for (const [, p] of [o, e]) await Deno.remove(p);
    equal(stdout, native.stdout, stderr);
    equal(result.status, 0);
    ok(result.perProcess.filter((p) => p.onLoan).length >= 20);
  });

  Deno.test(`[${platform}] ${tc}: MAP_SHARED memory between processes, recycled machines`, async () => {
    const vm = await same(await fixture("shm_fork", tc), ["shm.tmp", "nonamed"], "", {}, true);
    equal(vm.outcome.code, 0);
    match(vm.outcome.stdout, /^anonymous: counter 400 text 'written by the child'$/m);
  });

  // Only what the main suite builds too: the emulated machine has no compiler.
  const built = tc !== "glibc-static-pie";
  Deno.test({
    name: `[${platform}] ${tc}: threads (one vCPU each), signals to threads`,
    ignore: !built,
  }, async () => {
    // Built as tests/threads_test.ts builds them (the same cache entries).
    const flags = ["-static"];
    const cc = tc.startsWith("musl") ? "musl-gcc" : "gcc";
    for (const file of ["pthreads.c", "thread_signals.c", "timed_waits.c"]) {
      const src = await Deno.readTextFile(new URL(`../threads/${file}`, import.meta.url));
      const bin = await compileC(`thr-${file}-${cc}-${flags.join("")}`, src, cc, [
        "-pthread",
        ...flags,
      ]);
      equal((await same(bin)).outcome.code, 0, file);
    }
  });

  Deno.test(
    { name: `[${platform}] ${tc}: syscall rewriting, lazy and static`, ignore: !built },
    async () => {
      const bin = await fixture("rewrite_probe", tc);
      const native = await runNative(bin);
      for (const mode of ["lazy", "static"] as const) {
        const vm = await inVm(bin, [], "", {}, mode);
        equal(vm.outcome.stdout, native.stdout.replace("site 0f 05", "site ff d0"), mode);
      }
    },
  );

  Deno.test(
    { name: `[${platform}] ${tc}: syscall rewriting without page 0 (stub)`, ignore: !built },
    async () => {
      const bin = await fixture("stub_site", tc);
      const native = await runNative(bin);
      const vm = await inVm(bin, [], "", {}, "stub");
      equal(vm.outcome.stdout, native.stdout);
      match(vm.outcome.stderr, /^rewritten site yes .* genuine ud2$/m);
      equal(vm.result.stats.rewrite?.ud2, 5);
    },
  );

  Deno.test(`[${platform}] ${tc}: a NULL dereference is reported`, async () => {
    const vm = await inVm(await fixture("null", tc));
    equal(vm.outcome.code, 139);
    equal(vm.result.crash?.address, 0);
    ok(vm.result.crash?.symbol?.startsWith("crash_here"));
    match(vm.diagnostics[0], /guest killed by SIGSEGV: page fault: write at unmapped address 0x0/);
  });
}

Deno.test(`[${platform}] both host-call transports (the exitless spin at the guest's CPL)`, async () => {
  const hello = await fixture("hello", "musl-static");
  for (const hostCalls of ["exit", "exitless"] as const) {
    const vm = await inVm(hello, [], "", {}, "off", hostCalls);
    equal(vm.outcome.stdout, "hello, world\n");
    equal(vm.outcome.code, 0);
    if (hostCalls === "exit") equal(vm.result.stats.exitless, 0);
  }
});

Deno.test(`[${platform}] syscall latency loop`, async () => {
  const loop = await benchBinary("loop");
  for (const [kind, n] of [["none", "100000"], ["getpid", "2000"], ["write", "200"]]) {
    const vm = await inVm(loop, [kind, n]);
    equal(vm.outcome.code, 0);
    const ns = Number(/([\d.]+) ns\/call/.exec(vm.outcome.stderr)?.[1]);
    ok(ns > 0);
    console.log(`${platform}: ${kind} ${ns.toFixed(1)} ns/call in the guest`);
  }
});

Deno.test(
  { name: `[${platform}] in the hwkvm guest, a run is on hardware SVM`, ignore: !inHwkvm },
  async () => {
    const exists = (p: string) => Deno.stat(p).then(() => true, () => false);
    ok(await exists("/sys/module/kvm_amd"), "kvm_amd loaded");
    ok(!(await exists("/sys/module/kvm_pvm")), "no kvm_pvm");
    equal(platform, "svm");
    const vm = await inVm(await fixture("hello", "musl-static"));
    equal(vm.outcome.stdout, "hello, world\n");
    equal(vm.result.stats.platform, "svm");
  },
);

Deno.test(
  { name: `[${platform}] in the hwkvm guest, run --verbose names svm`, ignore: !inHwkvm },
  async () => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        `${ROOT}cli.ts`,
        "run",
        "--verbose",
        await fixture("hello", "musl-static"),
      ],
      stdin: "null",
    }).output();
    const stderr = new TextDecoder().decode(r.stderr);
    equal(new TextDecoder().decode(r.stdout), "hello, world\n");
    match(stderr.split("\n")[0], /^hermitux: platform svm \(guest at CPL 0\), host calls /);
    match(stderr, /"platform":"svm"/);
    equal(r.code, 0);
  },
);

Deno.test(`[${platform}] piped stdout and stdin from bytes (BootOptions.stdout/stdin)`, async () => {
  const cat = await fixture("cat", "musl-static");
  const r = await boot({
    path: cat,
    stdin: new TextEncoder().encode("through the VM\n"),
    stdout: "piped",
    stderr: "piped",
  });
  equal(r.status, 0);
  equal(new TextDecoder().decode(r.stdout), "through the VM\n");
  equal(new TextDecoder().decode(r.stderr), "15 bytes\n");
});

Deno.test(`[${platform}] the profiler samples a running guest (BootOptions.profile)`, async () => {
  const src = await Deno.readTextFile(`${ROOT}tests/c/prof_hot.c`);
  const bin = await compileC("prof_hot-hw", src, "musl-gcc", ["-static"]);
  const r = await boot({ path: bin, args: ["20"], profile: { hz: 499 }, stdout: "null" });
  equal(r.status, 0);
  const folded = r.profile!.folded();
  ok(r.profile!.samples > 0, "no samples");
  match(folded, /;hot_a[^; ]* \d+$/m);
});

Deno.test(`[${platform}] gdb: a breakpoint, a backtrace, the run's end`, async () => {
  const src = await Deno.readTextFile(`${ROOT}tests/c/gdb_target.c`);
  const bin = await compileC("gdb_target-hw", src, "gcc", ["-static", "-O0", "-pthread"]);
  const { gdb, vm } = await debug(bin, ["break leaf", "continue", "bt", "delete", "continue"]);
  match(gdb, /Breakpoint 1, leaf \(x=2\)/);
  match(gdb, /#1 +0x[0-9a-f]+ in middle \(x=1\)[^\n]*\n#2 +0x[0-9a-f]+ in main /);
  match(gdb, /exited with code 07/);
  equal(vm.code, 7, gdb);
});
