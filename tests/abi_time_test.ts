// The time module (src/syscalls/time.ts): sleeps, clock resolutions, CPU
// usage, affinity, umask, process groups and ids behave as natively, errors
// included; what cannot be compared with a native run (the guest is its own
// group leader, cannot change ids, runs on CPU 0) is checked on the handlers.
import { deepStrictEqual, doesNotMatch, equal, ok } from "node:assert/strict";
import { assertSameAsNative, fixture, runHermitux, type Toolchain } from "./fixtures.ts";
import { defaultRegistry, dispatch, E, type Process, timeModule } from "../src/syscalls/mod.ts";
import { GuestMemory } from "../src/vm/memory.ts";
import { ABI } from "../src/kernel/abi.ts";
import { SYSCALL_NUMBERS } from "../src/syscalls/table.ts";

const TOOLCHAINS: Toolchain[] = ["musl-static", "glibc-static", "glibc-dynamic", "musl-dynamic"];

for (const tc of TOOLCHAINS) {
  for (const name of ["time_sleep", "time_usage", "ids_process"]) {
    Deno.test(`${tc}: ${name} as natively`, async () => {
      const out = await assertSameAsNative(await fixture(name, tc));
      equal(out.code, 0);
      doesNotMatch(out.stderr, /unsupported syscall/);
      doesNotMatch(out.stdout, /ENOSYS|other/);
    });
  }

  Deno.test(`${tc}: --timeout stops a sleeping guest`, async () => {
    const t0 = performance.now();
    const out = await runHermitux(await fixture("time_sleep", tc), ["long"], {
      flags: ["--timeout", "0.5"],
    });
    ok(performance.now() - t0 < 15_000, "the 30 s sleep was not cut short");
    equal(out.stdout, "sleeping\n");
    equal(out.code, 124);
    equal(out.stderr, "hermitux: timed out after 0.5 s; guest stopped\n");
  });
}

/** A process with 4 MiB of memory (user memory from 2 MiB) for handler tests. */
function fakeProcess(): Process & { mem: GuestMemory; ended?: number } {
  const mem = new GuestMemory(4 * 1024 * 1024);
  const p = {
    mem,
    pid: 4242,
    state: new Map<string, unknown>(),
    argv: ["t"],
    exePath: "/t",
    ended: undefined as number | undefined,
    exit(code: number) {
      p.ended = code;
    },
  };
  return p as unknown as Process & { mem: GuestMemory; ended?: number };
}

/** Process groups and sessions are the procs module's (src/syscalls/procs.ts). */
const PROCS = new Set(["getpgrp", "getpgid", "getsid", "setpgid"]);
/** Affinity is the sched module's (src/syscalls/sched.ts). */
const SCHED = new Set(["sched_getaffinity"]);

function call(p: Process, name: string, ...args: bigint[]): bigint {
  const registry = defaultRegistry();
  const nr = SYSCALL_NUMBERS.get(name)!;
  const module = PROCS.has(name) ? "procs" : SCHED.has(name) ? "sched" : "time";
  equal(registry.moduleOf(nr), module, `${name} is not served by the ${module} module`);
  const regs = [...args, 0n, 0n, 0n, 0n, 0n, 0n].slice(0, 6);
  return dispatch(registry, { nr, args: regs, site: 0, process: p }, () => {}, new Set());
}

const U = BigInt(ABI.USER_MIN);

Deno.test("time module: every handler is registered by defaultRegistry()", () => {
  const r = defaultRegistry();
  for (const name of Object.keys(timeModule.handlers)) {
    equal(r.moduleOf(SYSCALL_NUMBERS.get(name)!), "time", name);
  }
});

Deno.test("procs module: a process without a table inherits hermitux's group and session", () => {
  const p = fakeProcess();
  // What hermitux's own process sees (0 when the leader is outside this pid namespace).
  const getpgid = Deno.dlopen("libc.so.6", {
    getpgid: { parameters: ["i32"], result: "i32" },
    getsid: { parameters: ["i32"], result: "i32" },
  });
  try {
    const group = BigInt(getpgid.symbols.getpgid(0));
    const session = BigInt(getpgid.symbols.getsid(0));
    equal(call(p, "getpgrp"), group);
    equal(call(p, "getpgid", 0n), group);
    equal(call(p, "getpgid", 4242n), group);
    equal(call(p, "getsid", 0n), session);
    equal(call(p, "getpgid", 1n), BigInt(-E.ESRCH));
    equal(call(p, "setpgid", 0n, 1n), BigInt(-E.EPERM));
    equal(call(p, "setpgid", 1n, 0n), BigInt(-E.ESRCH));
    equal(call(p, "setpgid", 0n, 0n), 0n);
    equal(call(p, "getpgrp"), 4242n, "setpgid changes the guest's view");
    equal(call(p, "setpgid", 4242n, 4242n), 0n);
    equal(BigInt(getpgid.symbols.getpgid(0)), group, "but not hermitux's own group");
  } finally {
    getpgid.close();
    p.mem.free();
  }
});

Deno.test("time module: umask starts at 022 and returns the old mask", () => {
  const p = fakeProcess();
  try {
    equal(call(p, "umask", 0o077n), 0o022n);
    equal(call(p, "umask", 0o1777n), 0o077n);
    equal(call(p, "umask", 0o022n), 0o777n);
    equal(p.state.get("umask"), 0o022);
  } finally {
    p.mem.free();
  }
});

Deno.test("time module: ids are the host's and cannot change", () => {
  const p = fakeProcess();
  const uid = Deno.uid() ?? 0, gid = Deno.gid() ?? 0;
  try {
    p.mem.view.setUint32(ABI.USER_MIN + 8, 0xffffffff, true);
    equal(call(p, "getresuid", U, U + 4n, U + 8n), 0n);
    deepStrictEqual(
      [0, 4, 8].map((o) => p.mem.view.getUint32(ABI.USER_MIN + o, true)),
      [uid, uid, uid],
    );
    equal(call(p, "getresgid", U, U + 4n, U + 8n), 0n);
    deepStrictEqual(
      [0, 4, 8].map((o) => p.mem.view.getUint32(ABI.USER_MIN + o, true)),
      [gid, gid, gid],
    );
    equal(call(p, "getresuid", U, 0n, U + 8n), BigInt(-E.EFAULT));
    equal(call(p, "setuid", BigInt(uid)), 0n);
    equal(call(p, "setuid", BigInt(uid + 1)), BigInt(-E.EPERM));
    equal(call(p, "setgid", BigInt(gid + 1)), BigInt(-E.EPERM));
    equal(call(p, "setuid", 0xffffffffn), BigInt(-E.EINVAL));
  } finally {
    p.mem.free();
  }
});

Deno.test("time module: getcpu is CPU 0 of node 0; sched_yield is 0", () => {
  const p = fakeProcess();
  try {
    p.mem.view.setBigUint64(ABI.USER_MIN, 0xffffffffffffffffn, true);
    equal(call(p, "getcpu", U, U + 4n), 0n);
    equal(p.mem.view.getBigUint64(ABI.USER_MIN, true), 0n);
    equal(call(p, "getcpu", 8n, U + 4n), BigInt(-E.EFAULT));
    equal(call(p, "sched_yield"), 0n);
  } finally {
    p.mem.free();
  }
});

Deno.test("time module: bad pointers are EFAULT, never a host access", () => {
  const p = fakeProcess();
  const top = BigInt(p.mem.size - 8);
  try {
    equal(call(p, "nanosleep", top), BigInt(-E.EFAULT));
    equal(call(p, "clock_nanosleep", 1n, 0n, 0n), BigInt(-E.EFAULT));
    equal(call(p, "clock_getres", 1n, top), BigInt(-E.EFAULT));
    equal(call(p, "times", top), BigInt(-E.EFAULT));
    equal(call(p, "getrusage", 0n, top), BigInt(-E.EFAULT));
    equal(call(p, "sysinfo", BigInt(p.mem.size - 64)), BigInt(-E.EFAULT));
    equal(call(p, "sched_getaffinity", 0n, 128n, 8n), BigInt(-E.EFAULT));
    equal(p.ended, undefined);
  } finally {
    p.mem.free();
  }
});
