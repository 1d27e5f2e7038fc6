// Linux ABI gaps (issue 18) against native runs, errno-exact, in three
// builds: signalfd, FIFOs and mknod, scheduling and nice values, select's
// time left and fd-table size, CPU-time clocks and timers, splice/tee,
// pidfds, pipe-size fcntls, clock_settime and chroot (tests/c/abi_*.c,
// each run in a fresh working directory); then what only hermitux can
// show: chroot with the run's capabilities, and the program named on the
// command line found through the guest's mounts.
import { deepStrictEqual, equal, match } from "node:assert/strict";
import {
  fixture,
  inTempDir,
  type Outcome,
  runHermitux,
  runNative,
  type RunOptions,
  type Toolchain,
} from "./fixtures.ts";

const BUILDS: Toolchain[] = ["glibc-dynamic", "glibc-static", "musl-static"];
const ROOT = new URL("../", import.meta.url).pathname;
/** A PATH directory that exists only in the guest's view. */
const PATH_DIR = "/opt/hermitux-test-bin";

/** Runs `bin` natively and under hermitux, each in a fresh directory; asserts the same outcome. */
async function same(bin: string, args: string[] = []): Promise<Outcome> {
  const run = (f: (b: string, a: string[], o: RunOptions) => Promise<Outcome>) =>
    inTempDir((cwd) => f(bin, args, { cwd }));
  const [native, vm] = await Promise.all([run(runNative), run(runHermitux)]);
  deepStrictEqual(vm, native);
  equal(native.code, 0);
  return vm;
}

for (const tc of BUILDS) {
  Deno.test(`${tc}: signalfd: records, poll/epoll/select, SFD_* flags, a new mask, blocking reads`, async () => {
    const out = await same(await fixture("abi_signalfd", tc));
    match(out.stdout, /^kill: signo 10 code 0 pid self uid \d+ int 0 ptr 0 status 0 errno 0$/m);
    match(out.stdout, /^sigqueue: signo 10 code -1 pid self uid \d+ int 42 ptr 42 /m);
    match(out.stdout, /^read two: 256\n {2}first: signo 10 .*\n {2}second: signo 12 /m);
    match(out.stdout, /^ {2}rt signo ok 1 values 42 7$/m);
    match(out.stdout, /^epoll_wait after kill: 1\n {2}data 77 events 0x1$/m);
    match(out.stdout, /^timer: signo 14 code 128 /m);
    match(out.stdout, /^child: signo 17 code 1 pid matches 1 status 3$/m);
    match(out.stdout, /^interrupted read: -1 EINTR$/m);
    match(out.stdout, /^thread's blocking read: signo 10 /m);
  });

  Deno.test(`${tc}: FIFOs: mkfifo, mknod (devices EPERM), opens that wait, O_NONBLOCK, threads, processes`, async () => {
    const out = await same(await fixture("abi_fifo", tc));
    match(out.stdout, /^f: fifo mode 644 rdev 0:0$/m);
    match(out.stdout, /^mknod chardev: -1 EPERM\nmknod blockdev: -1 EPERM$/m);
    match(out.stdout, /^open writer nonblocking, no reader: -1 ENXIO$/m);
    match(out.stdout, /^main read 13 'from a thread'$/m);
    match(out.stdout, /^thread read 11 'to a thread'$/m);
    match(out.stdout, /^parent read 14 'from the child' then EOF$/m);
    match(out.stdout, /^open reader, interrupted: -1 EINTR\nopen writer, interrupted: -1 EINTR$/m);
  });

  Deno.test(`${tc}: scheduling policies, priorities, nice values and affinity, privileged and not`, async () => {
    const out = await same(await fixture("abi_sched", tc));
    match(out.stdout, /^policy 1 max: 99\npolicy 1 min: 1$/m);
    match(out.stdout, /^fifo: policy 0x1 param 0\/10 nice 0$/m);
    match(out.stdout, /^FIFO 10 unprivileged: -1 EPERM$/m);
    match(out.stdout, /^setpriority 3 \(lower\): -1 EACCES$/m);
    match(out.stdout, /^nice 19: policy 0x40000000 param 0\/0 nice 19$/m);
    match(out.stdout, /^thread leave SCHED_IDLE \(RLIMIT_NICE 0\): -1 EPERM$/m);
    match(out.stdout, /^now on 1 cpus, cpu 0 1$/m);
  });

  Deno.test(`${tc}: select/pselect6/ppoll write back the time left; fds past the table are ignored`, async () => {
    const out = await same(await fixture("abi_select", tc));
    match(out.stdout, /^select, nothing ready, 30 ms: 0\n {2}left 0\.000000, set 0$/m);
    match(out.stdout, /^select fd 900 only: 0$/m);
    match(out.stdout, /^select fd 50 \(not open, inside the table\): -1 EBADF$/m);
    match(out.stdout, /^select fd 100 \(past the table\): 0$/m);
    match(out.stdout, /^select fd 120 \(table grown to 128\): -1 EBADF$/m);
    match(out.stdout, /^select interrupted: -1 EINTR\n {2}0 < left < 30 s: 1$/m);
  });

  Deno.test(`${tc}: CPU-time clocks count CPU, not sleep; thread clock ids; CPU timers`, async () => {
    const out = await same(await fixture("abi_cputime", tc));
    match(out.stdout, /process CPU < half of it 1, thread CPU < half 1$/m);
    match(
      out.stdout,
      /^worker spun 50 ms of its CPU: 1; main thread used less than it 1; process counted it 1$/m,
    );
    match(out.stdout, /^after a 100 ms sleep: fired 0\nafter spinning: fired 1$/m);
    match(out.stdout, /fired at least 3 times in 100 ms of CPU: 1$/m);
  });

  Deno.test(`${tc}: mremap grows a mapping that was split and mended (item 7)`, async () => {
    const out = await same(await fixture("mremap_grow", tc));
    match(out.stdout, /^mremap to 64 pages: ok\ncontents kept: 1\ngrown part writable: 1$/m);
  });

  Deno.test(`${tc}: a stack overflow is a SIGSEGV a handler on sigaltstack takes (item 9)`, async () => {
    const bin = await fixture("stack_overflow", tc);
    const out = await same(bin);
    match(out.stdout, /^(recovered \d: deep 1, SEGV_MAPERR 1\n){3}$/);
    const [native, vm] = await Promise.all([
      runNative(bin, ["nohandler"]),
      runHermitux(bin, ["nohandler"], { flags: ["--timeout", "120"] }),
    ]);
    equal(vm.code, native.code);
    equal(vm.code, 139);
  });

  Deno.test(`${tc}: mremap of a file's MAP_SHARED mapping: grown, moved, shrunk (item 11)`, async () => {
    const out = await same(await fixture("mremap_shared", tc));
    match(out.stdout, /^grown: ok, moved 1\nold bytes there: 1\nfile sees the new page: 1$/m);
    match(out.stdout, /^mapping sees pwrite: 1\nshrunk in place: 1\nfile size 16384$/m);
  });

  Deno.test(`${tc}: splice, tee, vmsplice, pipe sizes, F_NOTIFY, pidfds, clock_settime, chroot`, async () => {
    const out = await same(await fixture("abi_misc", tc));
    match(out.stdout, /^splice waits for data: 9$/m);
    match(out.stdout, /^F_SETPIPE_SZ 4096: 4096$/m);
    match(out.stdout, /^ {2}si_code 2 si_status 15 pid matches 1$/m);
    match(out.stdout, /^ {2}pidfd_send_signal after reaping: -1 ESRCH$/m);
    match(out.stdout, /^clock_settime REALTIME: -1 EPERM$/m);
    match(out.stdout, /^chroot jail: -1 EPERM$/m);
  });
}

Deno.test("chroot with CAP_SYS_CHROOT: / changes nothing, another directory is EPERM, named once", async () => {
  const bin = await fixture("abi_misc", "musl-static");
  const r = await inTempDir((cwd) => runHermitux(bin, ["priv"], { cwd }));
  equal(r.stdout, "chroot /: 0\nchroot . (not the root): -1 EPERM\n");
  equal(
    r.stderr,
    "hermitux: unsupported syscall chroot (161): chroot to a directory other than /\n",
  );
});

Deno.test("python3 mmap.resize of a file mapping, as natively (item 11)", async () => {
  const script = [
    "import mmap, os",
    'p = "py.tmp"',
    'with open(p, "w+b") as f:',
    '    f.write(b"a" * 4096); f.flush()',
    "    m = mmap.mmap(f.fileno(), 4096)",
    "    m.resize(3 * 4096)",
    '    m[8192:8197] = b"hello"',
    "    m.flush()",
    '    print(open(p, "rb").read()[8192:8197])',
    "    m.resize(2048)",
    "    m.close()",
    "print(os.path.getsize(p))",
  ].join("\n");
  const out = await same("/usr/bin/python3", ["-c", script]);
  equal(out.stdout, "b'hello'\n2048\n");
});

Deno.test("BIN is found through the guest's mounts, and PATH is searched there too", async () => {
  const hello = await fixture("hello", "musl-static");
  await inTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/m`);
    await Deno.copyFile(hello, `${dir}/m/prog`);
    await Deno.chmod(`${dir}/m/prog`, 0o755);
    // /opt/x exists only in the guest's view.
    const mount = ["--mount", `${dir}/m:/opt/x-hermitux-test:ro`];
    const r = await runHermitux("/opt/x-hermitux-test/prog", [], { flags: mount });
    deepStrictEqual(r, { stdout: "hello, world\n", stderr: "", code: 0 });
    const missing = await runHermitux("/opt/x-hermitux-test/nothing", [], { flags: mount });
    deepStrictEqual(missing, {
      stdout: "",
      stderr: "hermitux: /opt/x-hermitux-test/nothing: no such file\n",
      code: 127,
    });
    // A mount hides the host's file at the same path: the guest's is run.
    await Deno.mkdir(`${dir}/host`);
    await Deno.writeTextFile(`${dir}/host/prog`, "not this one\n");
    const shadow = await runHermitux(`${dir}/host/prog`, [], {
      flags: ["--mount", `${dir}/m:${dir}/host:ro`],
    });
    equal(shadow.stdout, "hello, world\n");
    // A bare name: PATH through the mounts (/usr/local/bin/prog is not on the host).
    const bare = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        `${ROOT}cli.ts`,
        "run",
        "--mount",
        `${dir}/m:${PATH_DIR}:ro`,
        "prog",
      ],
      env: { PATH: `${PATH_DIR}:/usr/bin:/bin` },
      clearEnv: true,
      stdin: "null",
    }).output();
    equal(new TextDecoder().decode(bare.stdout), "hello, world\n");
    equal(bare.code, 0);
  });
});
