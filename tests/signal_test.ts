// Signals against native runs: handlers for signals sent to oneself, CPU
// faults as signals (siginfo, ucontext, returning and longjmp-ing out),
// alternate stacks, masks, default actions and exit statuses, ITIMER_REAL,
// POSIX timers, FPU state across handlers.
import { deepStrictEqual, equal, match } from "node:assert/strict";
import {
  assertSameAsNative,
  fixture,
  runHermitux,
  runNative,
  type Toolchain,
  TOOLCHAINS,
} from "./fixtures.ts";

for (const tc of Object.keys(TOOLCHAINS) as Toolchain[]) {
  Deno.test(`${tc}: signal handlers, masks, sigsuspend, sigtimedwait`, async () => {
    const out = await assertSameAsNative(await fixture("sig_handler", tc));
    match(out.stdout, /^raise: count 1 sig 10 code -6 pid 1 uid 1$/m);
    match(out.stdout, /^unblocked: count 1 /m);
  });

  Deno.test(`${tc}: rt_sigaction: lookups, handlers, SIG_IGN dropping a pending signal, errors`, async () => {
    const bin = await fixture("sig_actions", tc);
    const out = await assertSameAsNative(bin);
    match(out.stdout, /^read back: handler 1 restart 1 usr2 1 kill 0$/m);
    match(out.stdout, /^pending after SIG_IGN: 0$/m);
    match(out.stdout, /^aliased: installed 1, old was default 1$/m);
    // The guest kernel serves lookups and handlers; only SIG_DFL and SIG_IGN
    // (three here, of 73 calls) reach the host.
    const r = await runHermitux(bin, [], { flags: ["--stats"] });
    const stats = JSON.parse(r.stderr.split("hermitux: stats ")[1]);
    equal(stats.syscalls.rt_sigaction, 3);
  });

  Deno.test(`${tc}: CPU faults become signals with siginfo and ucontext`, async () => {
    const bin = await fixture("sig_fault", tc);
    if (Deno.env.get("HERMITUX_REWRITE") === "lazy") {
      // Rewriting maps page 0 (the trampoline): the one thing that differs
      // is that a read at address 16 cannot fault. Everything else must not.
      const [native, vm] = await Promise.all([runNative(bin), runHermitux(bin)]);
      const readFault = /^sig 11 code 1 addr0 0 addr_is_rip 0 trapno 14 err_write 0 .*\n/m;
      match(native.stdout, readFault);
      deepStrictEqual(vm, { ...native, stdout: native.stdout.replace(readFault, "") });
      return;
    }
    const out = await assertSameAsNative(bin);
    match(out.stdout, /^sig 11 code 1 addr0 1 addr_is_rip 0 trapno 14 err_write 1/m);
    match(out.stdout, /^sig 8 code 1 addr0 0 addr_is_rip 1 trapno 0/m);
    match(out.stdout, /^sig 4 code 2 addr0 0 addr_is_rip 1 trapno 6/m);
    match(out.stdout, /^skipped ud2: ran 1 rax 1234$/m);
    match(out.stdout, /^on altstack 1 flags onstack 1$/m);
  });

  Deno.test(`${tc}: real-time signals queue, standard ones merge`, async () => {
    const out = await assertSameAsNative(await fixture("sig_rtqueue", tc));
    match(out.stdout, /^rt handled 3: 10 20 30$/m);
    match(out.stdout, /^sigtimedwait took 4 in order 1234$/m);
  });

  // At CPL 3 only: on hardware KVM the guest runs at CPL 0, where AC checks nothing.
  const pvm = await Deno.stat("/sys/module/kvm_pvm").then(() => true, () => false);
  Deno.test({
    name: `${tc}: an alignment check is SIGBUS (BUS_ADRALN), handled or fatal`,
    ignore: !pvm,
    fn: async () => {
      const bin = await fixture("sig_bus", tc);
      const out = await assertSameAsNative(bin);
      match(out.stdout, /^sig 7 code 1 addr0 1 trapno 17 ac in context 1\nloaded 0x5040302\n$/);
      // Fatal: the same status and output, plus hermitux's crash report.
      const [native, vm] = await Promise.all([runNative(bin, ["dfl"]), runHermitux(bin, ["dfl"])]);
      deepStrictEqual([vm.code, vm.stdout], [135, native.stdout]);
      equal(native.code, 135);
      match(vm.stderr, /guest killed by SIGBUS: alignment check\n {2}rip 0x[0-9a-f]+ <main\+/);
    },
  });

  Deno.test(`${tc}: FPU state is kept across handlers`, async () => {
    const out = await assertSameAsNative(await fixture("sig_fpu", tc));
    match(out.stdout, /xmm15 kept 1 st0 kept 1 rounding kept 1\nymm15 kept 1\n/);
    match(out.stdout, /loops interrupted 1, sums equal 1/);
  });

  Deno.test(`${tc}: alarm, pause, setitimer, interrupted sleeps`, async () => {
    const out = await assertSameAsNative(await fixture("sig_timer", tc));
    match(out.stdout, /^busy loop ticks>=3 1, disarmed 1$/m);
    match(out.stdout, /^SA_RESTART: writes ok 1$/m);
  });

  Deno.test(`${tc}: POSIX timers: signals, values, overruns, SIGEV_NONE/THREAD, errors`, async () => {
    const out = await assertSameAsNative(await fixture("sig_posix_timer", tc));
    match(out.stdout, /^one-shot: sig 10 code -2 value 42$/m);
    match(out.stdout, /^interval: sig 12 code -2 value 7 overrun>=3 1 si_overrun matches 1$/m);
    match(out.stdout, /^SIGEV_THREAD: ran with 'T'$/m);
    match(
      out.stdout,
      /^child: timer_gettime of the parent's timer: -1 EINVAL\nparent's timer still armed 1\n$/m,
    );
  });

  Deno.test(`${tc}: default actions end the run as on Linux`, async () => {
    const bin = await fixture("sig_default", tc);
    const codes: Record<string, number> = {
      abort: 134,
      term: 143,
      alarm: 142,
      "blocked-then-dfl": 140,
    };
    for (const [mode, code] of Object.entries(codes)) {
      equal((await assertSameAsNative(bin, [mode])).code, code, mode);
    }
    // An ignored SIGSEGV from a fault still kills (with hermitux's crash report).
    const [native, vm] = await Promise.all([
      runNative(bin, ["segv-ign"]),
      runHermitux(bin, ["segv-ign"]),
    ]);
    equal(vm.code, 139);
    equal(native.code, 139);
    equal(vm.stdout, native.stdout);
    match(vm.stderr, /guest killed by SIGSEGV: page fault: write at unmapped address 0x0/);
  });
}

Deno.test("--timeout ends a guest waiting in pause()", async () => {
  const r = await runHermitux(await fixture("sig_default", "musl-static"), ["pause"], {
    flags: ["--timeout", "0.3"],
  });
  equal(r.code, 124);
  equal(r.stdout, "mode pause\n");
  equal(r.stderr, "hermitux: timed out after 0.3 s; guest stopped\n");
});

Deno.test("--trace shows delivered signals strace-style", async () => {
  const r = await runHermitux(await fixture("sig_default", "musl-static"), ["term"], {
    flags: ["--trace"],
  });
  equal(r.code, 143);
  match(
    r.stderr,
    /^kill\(\d+, 15\) = 0\n--- SIGTERM \{si_signo=SIGTERM, si_code=SI_USER, si_pid=\d+, si_uid=\d+\} ---$/m,
  );
});
