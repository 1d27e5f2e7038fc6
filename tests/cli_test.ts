// The command line: help, version, errors, exit statuses, --trace,
// --timeout, unsupported syscalls, paths relative to the caller.
import { equal, match, ok } from "node:assert/strict";
import { fixture, runHermitux, runNative } from "./fixtures.ts";
import { VERSION } from "../src/version.ts";

const ROOT = new URL("../", import.meta.url).pathname;

function cli(args: string[], o: { cwd?: string; user?: string } = {}) {
  const deno = ["run", "-A", "--quiet", `${ROOT}cli.ts`, ...args];
  const [cmd, argv] = o.user
    ? ["setpriv", [
      `--reuid=${o.user}`,
      "--regid=nogroup",
      "--clear-groups",
      Deno.execPath(),
      ...deno,
    ]]
    : [Deno.execPath(), deno];
  return new Deno.Command(cmd, { args: argv, cwd: o.cwd, stdin: "null" }).output().then((r) => ({
    code: r.code,
    stdout: new TextDecoder().decode(r.stdout),
    stderr: new TextDecoder().decode(r.stderr),
  }));
}

Deno.test("--version and --help", async () => {
  const v = await cli(["--version"]);
  equal(v.stdout, `hermitux ${VERSION}\n`);
  equal(v.code, 0);
  const h = await cli(["--help"]);
  match(h.stdout, /hermitux run \[options\] BIN \[ARGS\.\.\.\]/);
  match(h.stdout, /--timeout SECONDS/);
  equal(h.code, 0);
  equal((await cli(["run", "--help"])).code, 0);
});

Deno.test("usage errors exit 2 with a message", async () => {
  const r = await cli(["frobnicate"]);
  equal(r.code, 2);
  match(r.stderr, /unknown command 'frobnicate'/);
  const m = await cli(["run"]);
  equal(m.code, 2);
  match(m.stderr, /missing BIN/);
  const s = await cli(["run", "--mem", "lots", "/bin/true"]);
  equal(s.code, 2);
  match(s.stderr, /bad size 'lots'/);
});

Deno.test("options after BIN belong to the guest", async () => {
  const r = await runHermitux("/bin/busybox", ["echo", "--trace", "--mem", "x"]);
  equal(r.stdout, "--trace --mem x\n");
  equal(r.stderr, "");
});

Deno.test("a missing file exits 127, a non-ELF 126, one line each", async () => {
  const missing = await cli(["run", "/no/such/program"]);
  equal(missing.code, 127);
  equal(missing.stderr, "hermitux: /no/such/program: no such file\n");
  const text = await cli(["run", "/etc/hostname"]);
  equal(text.code, 126);
  equal(text.stderr, "hermitux: /etc/hostname: not an ELF file\n");
});

Deno.test("a dynamic executable whose interpreter is not mounted exits 127 naming it", async () => {
  const r = await cli(["run", "--no-default-mounts", "/bin/ls"]);
  equal(r.code, 127);
  equal(
    r.stderr,
    "hermitux: /bin/ls: cannot load interpreter /lib64/ld-linux-x86-64.so.2: " +
      "no such file in the guest's mounts\n",
  );
});

Deno.test("a 32-bit executable is refused", async () => {
  const path = await Deno.makeTempFile();
  try {
    const elf = new Uint8Array(64);
    elf.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]);
    await Deno.writeFile(path, elf);
    const r = await cli(["run", path]);
    equal(r.code, 126);
    match(r.stderr, /32-bit ELF is not supported/);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("relative paths resolve against the caller's directory", async () => {
  const bin = await fixture("hello", "musl-static");
  const dir = bin.slice(0, bin.lastIndexOf("/"));
  const r = await cli(["run", `./${bin.slice(dir.length + 1)}`], { cwd: dir });
  equal(r.stdout, "hello, world\n");
  equal(r.code, 0);
});

Deno.test("a #! script runs its interpreter with Linux's argv", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/s.sh`, '#!/bin/busybox sh\necho "$0" "$@"\nexit 3\n');
    await Deno.writeTextFile(`${dir}/s.py`, "#!/usr/bin/python3 -u\nimport sys\nprint(sys.argv)\n");
    await Deno.writeTextFile(`${dir}/none`, "#!\n");
    for (const f of ["s.sh", "s.py", "none"]) await Deno.chmod(`${dir}/${f}`, 0o755);
    for (const [script, args] of [["./s.sh", ["x", "y z"]], ["./s.py", ["a"]]] as const) {
      const [native, vm] = await Promise.all([
        runNative(script, [...args], { cwd: dir }),
        runHermitux(script, [...args], { cwd: dir }),
      ]);
      equal(vm.stdout, native.stdout, script);
      equal(vm.code, native.code, script);
    }
    const bad = await runHermitux("./none", [], { cwd: dir });
    equal(bad.code, 126);
    match(bad.stderr, /#! names no interpreter/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a BIN without a slash is found in PATH, as a shell finds it", async () => {
  const r = await cli(["run", "echo", "found", "in", "PATH"]);
  equal(r.stdout, "found in PATH\n");
  equal(r.code, 0);
  // Not in PATH: the current directory, as before.
  const bin = await fixture("hello", "musl-static");
  const dir = bin.slice(0, bin.lastIndexOf("/"));
  const local = await cli(["run", bin.slice(dir.length + 1)], { cwd: dir });
  equal(local.stdout, "hello, world\n");
});

Deno.test("deno task hermitux resolves relative paths against the caller's directory", async () => {
  const bin = await fixture("hello", "musl-static");
  const dir = bin.slice(0, bin.lastIndexOf("/"));
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "task",
      "-q",
      "--config",
      `${ROOT}deno.json`,
      "hermitux",
      "run",
      `./${bin.slice(dir.length + 1)}`,
    ],
    cwd: dir,
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
  }).output();
  equal(new TextDecoder().decode(r.stdout), "hello, world\n");
  equal(new TextDecoder().decode(r.stderr), "");
  equal(r.code, 0);
});

Deno.test("without permission for /dev/kvm: one clear line", async () => {
  const bin = await fixture("hello", "musl-static");
  const r = await cli(["run", bin], { user: "nobody", cwd: "/" });
  equal(
    r.stderr,
    "hermitux: no permission to open /dev/kvm: run as root or add your user to the 'kvm' group\n",
  );
  equal(r.code, 125);
});

/** Whether `unshare -m` works here (root, and util-linux's unshare present). */
const canUnshare = (() => {
  try {
    return new Deno.Command("unshare", { args: ["-m", "true"], stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "without /dev/kvm: one clear line, status 125",
  ignore: !canUnshare,
}, async () => {
  // The CLI has no option naming the KVM device: hide /dev in a private mount namespace.
  const bin = await fixture("hello", "musl-static");
  const r = await new Deno.Command("unshare", {
    args: [
      "-m",
      "sh",
      "-c",
      'mount -t tmpfs tmpfs /dev && exec "$@"',
      "sh",
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      `${ROOT}cli.ts`,
      "run",
      bin,
    ],
    stdin: "null",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  equal(decode(r.stdout), "");
  equal(
    decode(r.stderr),
    "hermitux: /dev/kvm does not exist: KVM is not available on this machine " +
      "(load kvm_intel, kvm_amd or kvm_pvm)\n",
  );
  equal(r.code, 125);
});

Deno.test("--mem sizes the guest: 100 MiB fits in --mem 256M, not in --mem 64M", async () => {
  for (const tc of ["musl-static", "glibc-static"] as const) {
    const bin = await fixture("mem_touch", tc);
    const big = await runHermitux(bin, ["100"], { flags: ["--mem", "256M"] });
    equal(big.stdout, "touched 100 MiB, sum 2304000\n", tc);
    equal(big.code, 0, tc);
    const small = await runHermitux(bin, ["100"], { flags: ["--mem", "64M"] });
    equal(small.stdout, "malloc of 100 MiB failed\n", tc);
    equal(small.stderr, "", tc);
    equal(small.code, 1, tc);
  }
});

Deno.test("deno run --config CHECKOUT/deno.json CHECKOUT/cli.ts from another directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hermitux-cli-" });
  try {
    await Deno.copyFile(await fixture("args_env", "glibc-static"), `${dir}/prog`);
    await Deno.copyFile(await fixture("exit_code", "musl-static"), `${dir}/status`);
    const run = (bin: string, args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}cli.ts`, "run", bin, ...args],
        cwd: dir,
        stdin: "null",
      }).output().then((r) => ({
        stdout: new TextDecoder().decode(r.stdout),
        stderr: new TextDecoder().decode(r.stderr),
        code: r.code,
      }));
    const out = await run("./prog", ["a", "b c"]);
    equal(out.stdout, "argc=3\nargv[1]=a\nargv[2]=b c\n");
    equal(out.stderr, "to stderr\n");
    equal(out.code, 0);
    const status = await run("./status", ["42"]);
    equal(status.stdout + status.stderr, "");
    equal(status.code, 42);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--timeout stops a runaway guest with status 124", async () => {
  const t0 = performance.now();
  const r = await runHermitux(await fixture("spin", "musl-static"), [], {
    flags: ["--timeout", "0.5"],
  });
  equal(r.code, 124);
  equal(r.stderr, "hermitux: timed out after 0.5 s; guest stopped\n");
  ok(performance.now() - t0 < 20_000);
});

Deno.test("an unsupported syscall is named once and returns ENOSYS", async () => {
  for (const tc of ["musl-static", "glibc-static"] as const) {
    const r = await runHermitux(await fixture("nosys", tc));
    equal(r.stdout, "add_key = -1 errno ENOSYS\n".repeat(3));
    equal(r.stderr, "hermitux: unsupported syscall add_key (248)\n");
    equal(r.code, 0);
  }
});

Deno.test("--trace prints syscalls strace-style, guest-served ones included", async () => {
  const r = await runHermitux(await fixture("hello", "musl-static"), [], { flags: ["--trace"] });
  equal(r.stdout, "hello, world\n");
  const lines = r.stderr.trim().split("\n");
  match(lines[0], /^arch_prctl\(ARCH_SET_FS, 0x[0-9a-f]+\) = 0$/);
  ok(
    lines.includes(
      "ioctl(1, TIOCGWINSZ, " + lines.find((l) => l.startsWith("ioctl"))!.split(", ")[2],
    ),
  );
  ok(lines.includes(
    'writev(1, [{iov_base="hello, world", iov_len=12}, {iov_base="\\n", iov_len=1}], 2) = 13',
  ));
  equal(lines.at(-1), "exit_group(0) = ?");
  const g = await runHermitux(await fixture("hello", "glibc-static"), [], { flags: ["--trace"] });
  match(g.stderr, /^brk\(NULL\) = 0x[0-9a-f]+$/m);
  match(g.stderr, /^write\(1, "hello, world\\n", 13\) = 13$/m);
  match(g.stderr, /^newfstatat\(1, "", 0x[0-9a-f]+, 0x1000\) = 0$/m);
});

Deno.test("--stats reports boot time, exits and host calls", async () => {
  const r = await runHermitux(await fixture("hello", "musl-static"), [], { flags: ["--stats"] });
  const stats = JSON.parse(r.stderr.replace(/^hermitux: stats /, ""));
  ok(stats.bootMs > 0 && stats.exits + stats.exitless >= 3 && stats.hostCalls >= 2);
  equal(stats.syscalls.writev, 1);
});

Deno.test("--host-calls=exit serves every host call by a VM exit; exitless by none", async () => {
  const hello = await fixture("hello", "musl-static");
  const stats = async (mode: string) => {
    const r = await runHermitux(hello, [], { flags: ["--stats", `--host-calls=${mode}`] });
    equal(r.stdout, "hello, world\n");
    return JSON.parse(r.stderr.replace(/^hermitux: stats /, ""));
  };
  const exit = await stats("exit");
  equal(exit.exitless, 0);
  ok(exit.exits >= exit.hostCalls);
  const exitless = await stats("exitless");
  // Some come exitless (how many depends on load: after 2 ms without a call
  // the host stops polling); every call is served one way or the other.
  ok(exitless.exitless >= 1, JSON.stringify(exitless));
  ok(exitless.exits + exitless.exitless >= exitless.hostCalls, JSON.stringify(exitless));
  ok(exitless.exits < exit.exits, JSON.stringify([exit, exitless]));
  const bad = await runHermitux(hello, [], { flags: ["--host-calls=maybe"] });
  equal(bad.code, 2);
  match(bad.stderr, /bad --host-calls 'maybe' \(use auto, exit or exitless\)/);
});

Deno.test("--verbose names the platform and the guest's privilege level", async () => {
  const r = await runHermitux(await fixture("hello", "musl-static"), [], { flags: ["--verbose"] });
  equal(r.stdout, "hello, world\n");
  const pvm = await Deno.stat("/sys/module/kvm_pvm").then(() => true, () => false);
  const want = pvm ? "platform kvm_pvm (guest at CPL 3)" : /platform (vmx|svm) \(guest at CPL 0\)/;
  match(
    r.stderr.split("\n")[0],
    typeof want === "string" ? new RegExp(want.replace(/[()]/g, "\\$&")) : want,
  );
  match(r.stderr, /"platform":"(kvm_pvm|vmx|svm)"/);
  // The default transport (no HERMITUX_HOST_CALLS in the child).
  const bare = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli.ts", "run", "--verbose", await fixture("hello", "musl-static")],
    cwd: new URL("..", import.meta.url).pathname,
    env: { HERMITUX_HOST_CALLS: "" },
  }).output();
  const cpus = navigator.hardwareConcurrency;
  match(
    new TextDecoder().decode(bare.stderr),
    !pvm || cpus < 2
      ? /host calls exit \(/
      : cpus >= 4
      ? /host calls exitless \(/
      : /host calls auto \(measured on this host: an exit [\d.]+ µs, a syscall trap [\d.]+ µs, \d CPUs; .*: an exit over 20 µs, \d CPUs: exits until the program has made 64 host calls/,
  );
});

Deno.test("a bug in a syscall handler is an internal error (status 70), not a crash", async () => {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(
    script,
    `import { main } from "${ROOT}src/cli/main.ts";
import { stdioModule } from "${ROOT}src/syscalls/stdio.ts";
(stdioModule.handlers as Record<string, unknown>).write = () => { throw new TypeError("boom"); };
Deno.exit(await main(Deno.args));`,
  );
  const bin = await fixture("hello", "glibc-static");
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", script, "run", bin],
  }).output();
  await Deno.remove(script);
  equal(r.code, 70);
  match(
    new TextDecoder().decode(r.stderr),
    /^hermitux: internal error \(please report\): TypeError: boom/,
  );
});
