// Static programs under hermitux behave as they do natively: stdout,
// stderr and exit status compared for every toolchain.
import { equal, match, notEqual, ok } from "node:assert/strict";
import {
  assertSameAsNative,
  fixture,
  runHermitux,
  runNative,
  type Toolchain,
  TOOLCHAINS,
} from "./fixtures.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Lines a program prints natively, so that agreeing with a native run means passing. */
const EXPECTED: Record<string, (tc: Toolchain) => string[]> = {
  // ARCH_GET_FS gives the TLS pointer, and what ARCH_SET_FS set.
  tls: () => [
    "ARCH_GET_FS 0, is the TLS pointer 1, below it 1",
    "ARCH_SET_FS 0 0, ARCH_GET_FS 0 returns it 1, %fs:0 follows 1",
    "restored 1",
  ],
  // AT_BASE: 0 without an interpreter, else where ld.so is mapped.
  auxv: (tc) => [`AT_BASE ${tc.endsWith("-dynamic") ? "ok" : "static"}`, "AT_RANDOM present 1"],
};

for (const tc of Object.keys(TOOLCHAINS) as Toolchain[]) {
  Deno.test(`${tc}: hello world`, async () => {
    const out = await assertSameAsNative(await fixture("hello", tc));
    equal(out.stdout, "hello, world\n");
  });

  Deno.test(`${tc}: argv and environment`, async () => {
    await assertSameAsNative(await fixture("args_env", tc), ["one", "two words", ""], {
      env: { FOO: "bar", EMPTY: "", "WITH=EQ": "x=y" },
    });
  });

  Deno.test(`${tc}: exit codes 0, 1, 3, 255`, async () => {
    const bin = await fixture("exit_code", tc);
    for (const code of [0, 1, 3, 255]) {
      equal((await assertSameAsNative(bin, [String(code)])).code, code);
    }
  });

  Deno.test(`${tc}: stdin to stdout`, async () => {
    const data = new Uint8Array(300_000).map((_, i) => (i * 7919) % 251);
    const out = await assertSameAsNative(await fixture("cat", tc), [], { stdin: data });
    equal(out.stderr, "300000 bytes\n");
  });

  for (const name of ["malloc", "brk", "tls", "clock", "syscalls", "mmap", "auxv", "tty"]) {
    Deno.test(`${tc}: ${name}`, async () => {
      const out = await assertSameAsNative(await fixture(name, tc));
      equal(out.code, 0);
      const lines = out.stdout.split("\n");
      for (const line of EXPECTED[name]?.(tc) ?? []) ok(lines.includes(line), line);
    });
  }

  Deno.test(`${tc}: stdio on a terminal (under script(1))`, async () => {
    const bin = await fixture("tty", tc);
    const inPty = (cmd: string) => runNative("/usr/bin/script", ["-qec", cmd, "/dev/null"]);
    const cli = `${Deno.execPath()} run -A --quiet ${ROOT}cli.ts run`;
    const [native, vm] = await Promise.all([inPty(bin), inPty(`${cli} ${bin}`)]);
    equal(vm.stdout, native.stdout);
    match(native.stdout, /fd 1: isatty 1 winsz 1 tcgetattr 1 chr 1/);
  });

  Deno.test(`${tc}: NULL dereference is reported and exits 139`, async () => {
    const bin = await fixture("null", tc);
    const out = await runHermitux(bin);
    equal(out.code, 139);
    equal(out.stdout, "about to crash\n");
    match(out.stderr, /guest killed by SIGSEGV: page fault: write at unmapped address 0x0/);
    match(out.stderr, /rip 0x[0-9a-f]+ <crash_here(\+0x[0-9a-f]+)?>/);
    match(out.stderr, /address 0x0/);
    match(out.stderr, /backtrace:\n +0x[0-9a-f]+ <main\+0x[0-9a-f]+>/);
  });

  Deno.test(`${tc}: no protection keys: pkey_alloc and pkey_free are EINVAL`, async () => {
    const bin = await fixture("pkey", tc);
    const want = "pkey_alloc: -1 Invalid argument\npkey_alloc bad flags: -1 Invalid argument\n" +
      "pkey_free: -1 Invalid argument\n";
    // Natively the same where the host CPU has no PKU (as on kvm_pvm hosts).
    if (!/\bospke\b/.test(Deno.readTextFileSync("/proc/cpuinfo"))) {
      equal((await assertSameAsNative(bin)).stdout, want);
    } else equal((await runHermitux(bin)).stdout, want);
  });

  Deno.test(`${tc}: FIONBIO, FIOCLEX and FIONCLEX behave as natively`, async () => {
    const out = await assertSameAsNative(await fixture("ioctl_fio", tc));
    match(out.stdout, /^read of an empty pipe: -1 Resource temporarily unavailable$/m);
  });

  Deno.test(`${tc}: capget and capset behave as natively`, async () => {
    const out = await assertSameAsNative(await fixture("caps", tc));
    match(out.stdout, /^probe: 0 version 0x20080522$/m);
    match(out.stdout, /^grow permitted: -1 Operation not permitted$/m);
  });

  if (tc.endsWith("-dynamic")) {
    Deno.test(`${tc}: /proc/self/maps names the libraries, with file offsets`, async () => {
      const out = await assertSameAsNative(await fixture("maps_lib", tc));
      if (tc === "glibc-dynamic") {
        equal(out.stdout, "libc code: r-xp libc.so.6, offset matches 1\n");
      }
    });
  }

  if (tc === "glibc-dynamic") {
    Deno.test(`${tc}: space kept free above a library's RELRO is free to the program`, async () => {
      const out = await assertSameAsNative(await fixture("hole_map", tc));
      equal(
        out.stdout,
        "hint honored: 1\nMAP_FIXED_NOREPLACE: mapped there\nmremap in place: grown\n" +
          "contents: xy\nagain: File exists\n",
      );
    });

    Deno.test(`${tc}: a crash inside libc is reported with the library's symbols`, async () => {
      const out = await runHermitux(await fixture("crash_lib", tc));
      equal(out.code, 139);
      match(out.stderr, /rip 0x[0-9a-f]+ <[^>]*libc\.so\.6[^>]*>/);
      match(out.stderr, /<__libc_start_main\+0x[0-9a-f]+ in libc\.so\.6>/);
      match(out.stderr, /backtrace:\n +0x[0-9a-f]+ <main(\.cold)?\+0x[0-9a-f]+>/);
    });
  }

  Deno.test(`${tc}: invalid opcode is SIGILL, 132`, async () => {
    const out = await runHermitux(await fixture("ud2", tc));
    equal(out.code, 132);
    match(out.stderr, /guest killed by SIGILL: invalid opcode\n +rip 0x[0-9a-f]+ <main/);
  });
}

Deno.test("AT_RANDOM: 16 bytes, different each run", async () => {
  for (const tc of ["musl-static", "glibc-dynamic"] as const) {
    const bin = await fixture("auxv", tc);
    const [a, b] = await Promise.all([runHermitux(bin, ["random"]), runHermitux(bin, ["random"])]);
    match(a.stdout, /^[0-9a-f]{32}\n$/, tc);
    match(b.stdout, /^[0-9a-f]{32}\n$/, tc);
    notEqual(a.stdout, "0".repeat(32) + "\n", tc);
    notEqual(a.stdout, b.stdout, tc);
  }
});
