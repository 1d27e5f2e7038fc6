// Binary analysis: the data flow on hand-assembled code, whole programs
// (static and dynamic, musl and glibc), the soundness check against
// --trace, library search, and errors.
import assert from "node:assert/strict";
import { fixture, runHermitux, type Toolchain } from "./fixtures.ts";
import { analyzeBinary } from "../src/analysis/analyze.ts";
import { type CodeObject, Resolver, type SiteResult } from "../src/analysis/dataflow.ts";
import { Disassembly } from "../src/analysis/disasm.ts";
import { ElfError, parseElf } from "../src/loader/elf.ts";
import { readDynamic } from "../src/loader/sections.ts";
import { MountTable } from "../src/vfs/mounts.ts";
import type { Analysis } from "../src/analysis/analyze.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const decoder = new TextDecoder();

// ---------------------------------------------------------------------------
// The data flow on hand-assembled code (one object at 0x1000).

const BASE = 0x1000;

function resolveCode(bytes: number[]): SiteResult[] {
  const code = new Disassembly([{ addr: BASE, bytes: new Uint8Array(bytes) }]);
  const obj: CodeObject = {
    name: "code",
    code,
    entries: new Set([BASE, ...code.callsTo.keys()]),
    exports: new Map(),
    imports: new Map(),
    symbolize: (addr) => `0x${addr.toString(16)}`,
  };
  return new Resolver([obj]).resolveAll();
}

/** The numbers of the only site, asserting it was wholly resolved. */
function numbers(bytes: number[]): number[] {
  const sites = resolveCode(bytes);
  assert.equal(sites.length, 1);
  assert.deepEqual(sites[0].stuck, []);
  return [...sites[0].values.keys()].sort((a, b) => a - b);
}

const SYSCALL = [0x0f, 0x05];

Deno.test("data flow: constants, moves, lea, push/pop, partial writes", () => {
  assert.deepEqual(numbers([0xb8, 60, 0, 0, 0, ...SYSCALL]), [60]); // mov eax, 60
  assert.deepEqual(numbers([0x31, 0xc0, ...SYSCALL]), [0]); // xor eax, eax
  // mov ecx, 39; mov eax, ecx
  assert.deepEqual(numbers([0xb9, 39, 0, 0, 0, 0x89, 0xc8, ...SYSCALL]), [39]);
  // mov edi, 1; lea eax, [rdi+5]
  assert.deepEqual(numbers([0xbf, 1, 0, 0, 0, 0x8d, 0x47, 0x05, ...SYSCALL]), [6]);
  assert.deepEqual(numbers([0x6a, 0x3c, 0x58, ...SYSCALL]), [60]); // push 60; pop rax
  // xor eax, eax; mov al, 56 (musl's clone)
  assert.deepEqual(numbers([0x31, 0xc0, 0xb0, 0x38, ...SYSCALL]), [56]);
  // mov rax, -1 (64-bit); add rax, 40
  assert.deepEqual(
    numbers([0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, 0x48, 0x83, 0xc0, 40, ...SYSCALL]),
    [39],
  );
});

Deno.test("data flow: every path through branches", () => {
  assert.deepEqual(
    numbers([
      0x85,
      0xff, //             1000 test edi, edi
      0x74,
      0x07, //             1002 je 100b
      0xb8,
      1,
      0,
      0,
      0, //       1004 mov eax, 1
      0xeb,
      0x05, //             1009 jmp 1010
      0xb8,
      2,
      0,
      0,
      0, //       100b mov eax, 2
      ...SYSCALL, //             1010
    ]),
    [1, 2],
  );
  // What a branch implies: rax is 0 where `test rax, rax; jne` falls through.
  assert.deepEqual(
    numbers([
      0x48,
      0x8b,
      0x07, //       1000 mov rax, [rdi]
      0x48,
      0x85,
      0xc0, //       1003 test rax, rax
      0x75,
      0x02, //             1006 jne 100a
      ...SYSCALL, //             1008
      0xc3, //                   100a ret
    ]),
    [0],
  );
  // A call that never returns ends its path; the padding after it is dead.
  assert.deepEqual(
    numbers([
      0xb8,
      39,
      0,
      0,
      0, //      1000 mov eax, 39
      0x85,
      0xff, //             1005 test edi, edi
      0x74,
      0x0a, //             1007 je 1013
      0xe8,
      0x08,
      0,
      0,
      0, //    1009 call 1016 (ud2: never returns)
      0x0f,
      0x1f,
      0x40,
      0x00, // 100e nop dword [rax]
      0x90, //                   1012 nop
      ...SYSCALL, //             1013
      0xc3, //                   1015 ret
      0x0f,
      0x0b, //             1016 ud2
    ]),
    [39],
  );
});

Deno.test("data flow: a wrapper's number comes from its callers", () => {
  const sites = resolveCode([
    0xbf,
    39,
    0,
    0,
    0, //        1000 mov edi, 39
    0xe8,
    0x0b,
    0,
    0,
    0, //      1005 call 1015
    0xbf,
    186,
    0,
    0,
    0, //       100a mov edi, 186
    0xe8,
    0x01,
    0,
    0,
    0, //      100f call 1015
    0xc3, //                     1014 ret
    0x48,
    0x89,
    0xf8, //         1015 mov rax, rdi   (glibc's syscall())
    ...SYSCALL, //               1018
    0xc3, //                     101a ret
  ]);
  assert.equal(sites.length, 1);
  assert.deepEqual(sites[0].stuck, []);
  assert.deepEqual([...sites[0].values.keys()].sort((a, b) => a - b), [39, 186]);
  assert.deepEqual(sites[0].wrappers, [{ object: 0, addr: 0x1015, location: "rdi", callers: 2 }]);
  // The origins are the instructions that set the constants.
  assert.deepEqual(sites[0].values.get(186), [{ object: 0, addr: 0x100a }]);
});

Deno.test("data flow: what it cannot follow is reported with the instruction", () => {
  const [load] = resolveCode([0x8b, 0x07, ...SYSCALL]); // mov eax, [rdi]
  assert.equal(load.values.size, 0);
  assert.equal(load.stuck.length, 1);
  assert.equal(load.stuck[0].addr, BASE);
  assert.match(load.stuck[0].reason, /rax is set by 'mov eax,\[rdi\]'/);
  const [call] = resolveCode([
    0xb8,
    1,
    0,
    0,
    0, //         1000 mov eax, 1
    0xe8,
    0x03,
    0,
    0,
    0, //      1005 call 100d
    ...SYSCALL, //               100a
    0xc3, //                     100c ret
    0xc3, //                     100d ret
  ]);
  assert.match(call.stuck[0].reason, /rax is set by the call to 0x100d/);
  // An argument of a function nobody calls directly.
  const [orphan] = resolveCode([0x48, 0x89, 0xf8, ...SYSCALL, 0xc3]);
  assert.match(orphan.stuck[0].reason, /rdi is an argument of 0x1000, which has no direct callers/);
});

Deno.test("disassembly: sites include int 0x80 and sysenter", () => {
  const code = new Disassembly([{
    addr: BASE,
    bytes: new Uint8Array([0x0f, 0x05, 0xcd, 0x80, 0x0f, 0x34, 0xc3]),
  }]);
  assert.deepEqual([...code.sites].map((i) => code.addrs[i]), [0x1000, 0x1002, 0x1004]);
  code.free();
});

// ---------------------------------------------------------------------------
// Whole programs.

function tracedSyscalls(stderr: string): Set<string> {
  const names = new Set<string>();
  for (const line of stderr.split("\n")) {
    const m = /^([a-z_][a-z0-9_]*)\(.*\) = /.exec(line);
    if (m) names.add(m[1]);
  }
  return names;
}

/** Runs `cli.ts analyze ARGS`. */
async function runAnalyze(args: string[], cwd?: string) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${ROOT}cli.ts`, "analyze", ...args],
    cwd,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, stdout: decoder.decode(r.stdout), stderr: decoder.decode(r.stderr) };
}

Deno.test("hello: every site resolved, with musl and with glibc", async () => {
  for (const tc of ["musl-static", "glibc-static", "glibc-static-pie"] as const) {
    const a = analyzeBinary(await fixture("hello", tc));
    assert.ok(a.complete, `${tc}: ${JSON.stringify(a.unresolved)}`);
    assert.equal(a.objects.length, 1);
    assert.deepEqual(a.numbers, [...a.numbers].sort((x, y) => x - y));
    assert.equal(a.names.length, a.numbers.length);
    for (const name of ["exit_group", "set_tid_address", "arch_prctl"]) {
      assert.ok(a.names.includes(name), `${tc}: ${name} in ${a.names}`);
    }
    assert.ok(a.names.includes(tc.startsWith("musl") ? "writev" : "write"));
    // Fewer than a quarter of Linux's calls: what specialization can build on.
    assert.ok(a.names.length < 80, `${tc}: ${a.names.length}`);
  }
});

Deno.test("libc's syscall() is resolved at its callers, also through the PLT", async () => {
  for (const tc of ["glibc-static", "musl-static", "glibc-dynamic", "musl-dynamic"] as const) {
    const a = analyzeBinary(await fixture("nosys", tc)); // syscall(SYS_add_key, ...)
    const use = a.syscalls.find((s) => s.name === "add_key");
    assert.ok(use, `${tc}: add_key in ${a.names}`);
    assert.ok(use.locations.some((l) => l.origins?.some((o) => o.object.includes("nosys"))));
    assert.ok(a.wrappers.some((w) => w.argument === "rdi" && w.callers > 0), tc);
  }
});

/** Programs that run without arguments; each is built with every toolchain below. */
const PROGRAMS = [
  "hello",
  "cat",
  "getpid",
  "malloc",
  "mmap",
  "tls",
  "clock",
  "random",
  "syscalls",
  "nosys",
  "pipes",
  "sig_handler",
  "sig_timer",
  "time_sleep",
  "fs_files",
  "dirs",
  "sockets",
  "poll_wait",
];

async function pool<T>(items: T[], width: number, f: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: width }, async () => {
    while (queue.length > 0) await f(queue.shift()!);
  }));
}

Deno.test("soundness: what --trace sees is a subset of what analyze reports", async () => {
  const toolchains: Toolchain[] = [
    "musl-static",
    "glibc-static",
    "glibc-static-pie",
    "glibc-dynamic",
    "musl-dynamic",
  ];
  const cwd = await Deno.makeTempDir({ prefix: "hermitux-analyze-" });
  const failures: string[] = [];
  let checked = 0;
  try {
    const jobs = toolchains.flatMap((tc) => PROGRAMS.map((name) => ({ tc, name })));
    await pool(jobs, 4, async ({ tc, name }) => {
      const bin = await fixture(name, tc);
      const a = analyzeBinary(bin);
      const run = await runHermitux(bin, [], { flags: ["--trace", "--timeout", "20"], cwd });
      const traced = tracedSyscalls(run.stderr);
      assert.ok(traced.has("exit_group") || traced.size > 3, `${name}/${tc}: ${run.stderr}`);
      const missing = [...traced].filter((n) => !a.names.includes(n));
      if (missing.length > 0) failures.push(`${name} (${tc}): ${missing.join(", ")}`);
      checked++;
    });
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
  assert.deepEqual(failures, []);
  assert.equal(checked, toolchains.length * PROGRAMS.length);
});

Deno.test("dynamic programs: the interpreter and libc.so.6 are followed", async () => {
  const bin = await fixture("hello", "glibc-dynamic");
  const r = await runAnalyze(["--json", bin]);
  assert.equal(r.code, 0, r.stderr);
  const a: Analysis = JSON.parse(r.stdout);
  assert.deepEqual(a.objects.map((o) => o.role), ["executable", "interpreter", "library"]);
  assert.match(a.objects[1].path, /ld-linux-x86-64\.so\.2$/);
  assert.match(a.objects[2].path, /\/libc\.so\.6$/);
  assert.equal(a.objects[2].needed, "libc.so.6");
  assert.equal(a.objects[2].neededBy, bin);
  assert.deepEqual(a.missing, []);
  // The executable itself has no syscall instruction: libc makes them all.
  assert.equal(a.objects[0].sites, 0);
  assert.ok(a.objects[1].syscalls.includes("mmap"));
  const write = a.syscalls.find((s) => s.name === "write")!;
  assert.ok(write.objects.some((o) => o.endsWith("libc.so.6")));
  assert.equal(a.names.length, a.totals.syscalls);
  // A libc has some sites whose number is loaded from memory (setxid).
  for (const u of a.unresolved) assert.ok(u.reasons.length > 0 && u.symbol !== "");

  // musl: the interpreter is libc itself.
  const m = analyzeBinary(await fixture("hello", "musl-dynamic"));
  assert.deepEqual(m.objects.map((o) => o.role), ["executable", "interpreter"]);
  assert.deepEqual(m.missing, []);
});

Deno.test("ELF: the dynamic section names libraries, imports and exports", async () => {
  const bin = await fixture("nosys", "glibc-dynamic");
  const bytes = await Deno.readFile(bin);
  const dyn = readDynamic(bytes, parseElf(bytes, bin))!;
  assert.deepEqual(dyn.needed, ["libc.so.6"]);
  assert.ok(dyn.symbolRelocs.some((r) => r.name === "syscall" && r.type === 7)); // JUMP_SLOT
  assert.deepEqual(dyn.exports, []);
  const libc = analyzeBinary(bin).objects[2].path;
  const libBytes = await Deno.readFile(libc);
  const lib = readDynamic(libBytes, parseElf(libBytes, libc))!;
  assert.equal(lib.soname, "libc.so.6");
  assert.ok(lib.exports.some((s) => s.name === "syscall"));
  const staticBin = await fixture("hello", "musl-static");
  const staticBytes = await Deno.readFile(staticBin);
  assert.equal(readDynamic(staticBytes, parseElf(staticBytes)), undefined);
});

Deno.test("dynamic programs: the objects of /bin/ls, quickly", async () => {
  const ls = "/bin/ls";
  try {
    await Deno.stat(ls);
  } catch {
    return; // not on this machine
  }
  const t0 = performance.now();
  const a = analyzeBinary(ls);
  const ms = performance.now() - t0;
  assert.ok(a.objects.some((o) => /\/libc\.so\.6$/.test(o.path)));
  assert.ok(a.objects.every((o) => o.role !== "library" || o.neededBy !== undefined));
  assert.ok(a.totals.instructions > 300_000, String(a.totals.instructions));
  assert.ok(ms < 10_000, `${ms} ms`);
  // Decoded objects are cached (per file contents): the same answer again.
  assert.deepEqual(analyzeBinary(ls), a);
});

Deno.test("libraries are found through the mounts, DT_RUNPATH and --library-path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hermitux-analyze-" });
  try {
    // libfoo.so makes getppid (110) itself; the program finds it through $ORIGIN.
    await Deno.writeTextFile(
      `${dir}/foo.c`,
      `long foo(void) { long r; __asm__ volatile ("syscall" : "=a"(r) : "a"(110L) : "rcx", "r11", "memory"); return r; }\n`,
    );
    await Deno.writeTextFile(
      `${dir}/main.c`,
      `long foo(void);\nint main(void) { return foo() == 0; }\n`,
    );
    const gcc = async (args: string[]) => {
      const r = await new Deno.Command("gcc", { args, cwd: dir }).output();
      assert.ok(r.success, decoder.decode(r.stderr));
    };
    await Deno.mkdir(`${dir}/lib`);
    await gcc(["-O2", "-shared", "-fPIC", "foo.c", "-o", "lib/libfoo.so"]);
    await gcc(["-O2", "main.c", "-Llib", "-lfoo", "-Wl,-rpath,$ORIGIN/lib", "-o", "withpath"]);
    await gcc(["-O2", "main.c", "-Llib", "-lfoo", "-o", "nopath"]);

    const found = analyzeBinary(`${dir}/withpath`);
    const foo = found.objects.find((o) => o.needed === "libfoo.so");
    assert.equal(foo?.path, `${dir}/lib/libfoo.so`);
    assert.deepEqual(foo?.syscalls, ["getppid"]);
    assert.ok(found.syscalls.find((s) => s.name === "getppid")!.objects.includes(foo!.path));

    const lost = analyzeBinary(`${dir}/nopath`);
    assert.deepEqual(lost.missing, [{
      name: "libfoo.so",
      neededBy: `${dir}/nopath`,
      reason: "not found",
    }]);
    assert.equal(lost.complete, false);
    const viaPath = analyzeBinary(`${dir}/nopath`, { libraryPath: [`${dir}/lib`] });
    assert.deepEqual(viaPath.missing, []);

    // Through the mounts: only what the guest would see.
    const mounts = new MountTable([{ host: dir, guest: "/app", readOnly: true }]);
    try {
      const bare = analyzeBinary(`${dir}/withpath`, { mounts });
      // Neither the interpreter nor libc is there, and $ORIGIN names a host path.
      assert.deepEqual(bare.missing.map((m) => m.name), [
        "/lib64/ld-linux-x86-64.so.2",
        "libfoo.so",
        "libc.so.6",
      ]);
      assert.equal(bare.objects.length, 1);
    } finally {
      mounts.close();
    }
    const cli = await runAnalyze([
      "--json",
      "--no-default-mounts",
      `--mount=${dir}:/app`,
      "--library-path=/app/lib",
      `${dir}/nopath`,
    ]);
    assert.equal(cli.code, 0, cli.stderr);
    const viaMounts: Analysis = JSON.parse(cli.stdout);
    assert.ok(viaMounts.objects.some((o) => o.path === "/app/lib/libfoo.so"));
    assert.ok(viaMounts.missing.some((m) => /ld-linux/.test(m.name)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: the table, the unresolved sites, the totals", async () => {
  const r = await runAnalyze([await fixture("hello", "musl-static")]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\s+nr\s+syscall\s+sites\s+objects$/m);
  assert.match(r.stdout, /^\s+231\s+exit_group\s+1\s+hello-musl-static-/m);
  assert.match(
    r.stdout,
    /^totals: \d+ system calls from \d+ sites in 1 object \(\d+ resolved, 0 unresolved\)/m,
  );
  const d = await runAnalyze([await fixture("hello", "glibc-dynamic")]);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /^unresolved sites \(\d+\):$/m);
  assert.match(d.stdout, /^\s+at 0x[0-9a-f]+ \S+: rax is set by '/m);
  assert.match(d.stdout, /interpreter\s+\/\S*ld-linux-x86-64\.so\.2/);
});

Deno.test("malformed input: a clear error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hermitux-analyze-" });
  try {
    await Deno.writeTextFile(`${dir}/script.sh`, "#!/bin/sh\necho hi\n");
    const hello = await Deno.readFile(await fixture("hello", "musl-static"));
    await Deno.writeFile(`${dir}/truncated`, hello.subarray(0, 100));
    const notElf = await runAnalyze([`${dir}/script.sh`]);
    assert.equal(notElf.code, 126);
    assert.equal(notElf.stderr.trim(), `hermitux: ${dir}/script.sh: not an ELF file`);
    const cut = await runAnalyze([`${dir}/truncated`]);
    assert.equal(cut.code, 126);
    assert.match(
      cut.stderr,
      /^hermitux: .*truncated: truncated \(.* lies beyond the end of the file\)/,
    );
    const missing = await runAnalyze([`${dir}/nothing`]);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /no such file/);
    assert.throws(() => analyzeBinary(`${dir}/script.sh`), ElfError);
    const usage = await runAnalyze([]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /expected one BIN/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
