// The gdb stub (src/gdb) driven by Debian's gdb in batch mode against
// `hermitux run --gdb 0`: breakpoints, backtraces (through libc in a
// dynamic program), registers, memory, step/next/finish, stepping over a
// syscall, a SIGSEGV, kill and detach; and the protocol fed bad packets.
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { compileC, type Toolchain, TOOLCHAINS } from "./fixtures.ts";
import { debug, startDebuggee } from "./gdb_run.ts";
import {
  escapeBinary,
  expandRle,
  framePacket,
  PacketParser,
  unescapeBinary,
} from "../src/gdb/packet.ts";
import { G_PACKET_BYTES } from "../src/gdb/regs.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const decoder = new TextDecoder();

/** tests/c/NAME.c built with `tc`, at -O0 so that lines step as written. */
async function target(tc: Toolchain, name = "gdb_target"): Promise<string> {
  const { cc, flags } = TOOLCHAINS[tc];
  const source = await Deno.readTextFile(`${ROOT}tests/c/${name}.c`);
  return compileC(`${name}-${tc}`, source, cc, [...flags, "-O0", "-pthread"]);
}

for (const tc of ["glibc-dynamic", "glibc-static", "musl-static"] as const) {
  Deno.test(`gdb (${tc}): break, bt, info registers, x/s, continue to the end`, async () => {
    const bin = await target(tc);
    const { gdb, vm } = await debug(bin, [
      "break leaf",
      "continue",
      "bt",
      "info registers rip",
      "x/s message",
      "delete",
      "break compare",
      "continue",
      "bt",
      "info sharedlibrary",
      "delete",
      "continue",
    ]);
    match(gdb, /Breakpoint 1, leaf \(x=2\)/);
    match(
      gdb,
      /#0 +leaf \(x=2\)[^\n]*\n#1 +0x[0-9a-f]+ in middle \(x=1\)[^\n]*\n#2 +0x[0-9a-f]+ in main /,
    );
    match(gdb, /rip +0x[0-9a-f]+ +0x[0-9a-f]+ <leaf\+\d+>/);
    match(gdb, /0x[0-9a-f]+:\s+"gdb sees this string"/);
    match(gdb, /Breakpoint 2, compare \(a=/);
    // Up from the callback into libc's qsort (through it to main where libc has unwind tables).
    match(gdb, /#0 +compare \([^\n]*\n#1 +0x[0-9a-f]+ in /);
    if (tc !== "musl-static") match(gdb, /#0 +compare \([^]*\n#\d+ +0x[0-9a-f]+ in main /);
    if (tc === "glibc-dynamic") {
      match(gdb, /#1 +0x[0-9a-f]+ in [^\n]*(msort|qsort|libc\.so\.6)/);
      match(gdb, /0x[0-9a-f]+ +0x[0-9a-f]+ +Yes[^\n]* \/lib\/x86_64-linux-gnu\/libc\.so\.6/);
    }
    match(gdb, /exited with code 07/);
    equal(vm.stdout, "gdb sees this string 5\n");
    equal(vm.code, 7);
  });
}

Deno.test("gdb: step, next and finish", async () => {
  const bin = await target("glibc-dynamic");
  const { gdb, vm } = await debug(bin, [
    "break middle",
    "continue",
    "step",
    "next",
    "finish",
    "next",
    "continue",
  ]);
  match(gdb, /Breakpoint 1, middle \(x=1\)/);
  match(gdb, /\nleaf \(x=2\) at [^\n]*gdb_target[^\n]*\.c:\d+\n/); // step: into leaf
  match(gdb, /\n14\s+return x \* 2;/); // next, in leaf
  match(gdb, /in middle \(x=1\)[^\n]*\n[^\n]*\nValue returned/); // finish: back in middle
  match(gdb, /Value returned is \$1 = 4/);
  match(gdb, /\n19\s+return y \+ 1;/); // next, in middle
  match(gdb, /exited with code 07/);
  equal(vm.stdout, "gdb sees this string 5\n");
  equal(vm.code, 7);
});

Deno.test("gdb: a software watchpoint, SSE registers read and written", async () => {
  const bin = await target("glibc-static");
  const { gdb, vm } = await debug(bin, [
    "break middle",
    "continue",
    "set can-use-hw-watchpoints 0",
    "watch sink",
    "continue",
    "info registers mxcsr",
    "set $xmm1.v2_int64[0] = 77",
    "p $xmm1.v2_int64[0]",
    "delete",
    "continue",
  ]);
  match(gdb, /Old value = 0\nNew value = 2\n/);
  match(gdb, /mxcsr +0x1f80/);
  match(gdb, /\$1 = 77/);
  match(gdb, /exited with code 07/);
  equal(vm.stdout, "gdb sees this string 5\n");
});

Deno.test("gdb: stepi over a syscall instruction lands right after it", async () => {
  const bin = await target("glibc-static");
  const { gdb, vm } = await debug(bin, [
    "break write",
    "continue",
    "display/i $pc",
    ...Array(12).fill("stepi"),
    "delete",
    "continue",
  ]);
  const pcs = [...gdb.matchAll(/=> (0x[0-9a-f]+)[^\n]*:\s+(\S+)/g)].map((m) =>
    [
      Number(m[1]),
      m[2],
    ] as const
  );
  const at = pcs.findIndex(([, insn]) => insn === "syscall");
  ok(at >= 0 && at + 1 < pcs.length, `no syscall stepped over in:\n${gdb}`);
  equal(pcs[at + 1][0], pcs[at][0] + 2);
  match(gdb, /exited with code 07/);
  equal(vm.stdout, "gdb sees this string 5\n");
});

Deno.test("gdb: a SIGSEGV stops in gdb first, then the crash report and status 139", async () => {
  const bin = await target("glibc-dynamic");
  const { gdb, vm } = await debug(bin, ["continue", "bt", "continue"], ["crash"]);
  match(gdb, /Program received signal SIGSEGV, Segmentation fault\.\ncrash \(\)/);
  match(gdb, /#1 +0x[0-9a-f]+ in main /);
  match(gdb, /Program terminated with signal SIGSEGV/);
  match(vm.stderr, /hermitux: guest killed by SIGSEGV: page fault: write at unmapped address 0x8/);
  equal(vm.code, 139);
});

Deno.test("gdb: kill ends the run (status 137), detach lets it finish", async () => {
  const bin = await target("glibc-dynamic");
  const killed = await debug(bin, ["break leaf", "continue", "kill"]);
  match(killed.gdb, /Breakpoint 1, leaf/);
  equal(killed.vm.stdout, "");
  equal(killed.vm.code, 137);
  const detached = await debug(bin, ["break leaf", "continue", "detach"]);
  match(detached.gdb, /Breakpoint 1, leaf/);
  match(detached.gdb, /Inferior 1 \(Remote target\) detached/);
  equal(detached.vm.stdout, "gdb sees this string 5\n");
  equal(detached.vm.code, 7);
});

Deno.test("gdb: info threads on a 4-thread program shows each thread's own frame", async () => {
  const bin = await target("glibc-dynamic", "gdb_threads");
  const { gdb, vm } = await debug(bin, [
    "break worker_point",
    "continue",
    "info threads",
    "bt",
    "delete",
    "continue",
  ]);
  match(gdb, /Thread \d+ hit Breakpoint 1, worker_point \(id=\d\)/);
  const rows = [...gdb.matchAll(/^[* ] +(\d) +Thread (\d+)[^\n]*/gm)];
  equal(rows.length, 4, gdb);
  equal(new Set(rows.map((r) => r[2])).size, 4);
  // The stopped thread is in worker_point; main (thread 1) is elsewhere, in its barrier.
  match(rows.find((r) => r[0].startsWith("*"))![0], /worker_point/);
  ok(!/worker_point/.test(rows.find((r) => r[1] === "1")![0]), gdb);
  match(gdb, /#1 +0x[0-9a-f]+ in worker \(arg=/);
  match(gdb, /exited normally/);
  equal(vm.stdout, "hits 3\n");
  equal(vm.code, 0);
});

/** A packet in what the stub sends: its payload is group 1. */
const PACKET = /\$([^#]*)#[0-9a-f]{2}/;

/** A raw protocol connection to the stub on `port`: read up to a pattern, ask and take the reply. */
async function rawClient(port: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let got = "";
  const buf = new Uint8Array(65536);
  const read = async (want: RegExp) => {
    while (!want.test(got)) {
      const n = await conn.read(buf);
      if (n === null) throw new Error(`connection closed; got ${JSON.stringify(got)}`);
      got += decoder.decode(buf.subarray(0, n));
    }
    const m = want.exec(got)!;
    got = got.slice(m.index + m[0].length);
    return m;
  };
  const ask = async (payload: string) => {
    await conn.write(framePacket(payload));
    return (await read(PACKET))[1];
  };
  return { conn, read, ask };
}

Deno.test("gdb: bad packets get errors, never a host crash", async () => {
  const bin = await target("glibc-static");
  const { port, done } = await startDebuggee(bin);
  const { conn, read, ask } = await rawClient(port);
  await conn.write(new TextEncoder().encode("garbage$zz#00")); // a bad checksum: '-'
  await read(/-/);
  equal(await ask("m0,8"), "E14"); // below user memory
  equal(await ask("mffffffffffffff00,100"), "E14");
  equal(await ask("mzz"), "E01");
  equal(await ask("Z0,10,1"), "E14");
  equal(await ask("p9999"), "E01");
  equal(await ask("P10=00"), "E01"); // rip needs 8 bytes
  equal(await ask("M200000,4:zz"), "E01");
  equal(await ask("qNoSuchThing"), "");
  equal((await ask("g")).length, 2 * G_PACKET_BYTES);
  match(await ask("qXfer:features:read:target.xml:0,4000"), /^m<\?xml[^]*i386:x86-64/);
  equal(await ask("qXfer:nothing:read::0,10"), "E00");
  equal(await ask("vKill;1"), "OK");
  conn.close();
  const vm = await done;
  equal(vm.code, 137);
});

Deno.test("gdb: Ctrl-C while the guest runs stops it with SIGINT, where it was", async () => {
  // gdb's batch mode does not wait for an interrupted target: the protocol by hand.
  const bin = await target("glibc-static", "gdb_spin");
  const { port, done } = await startDebuggee(bin);
  const { conn, read, ask } = await rawClient(port);
  match(await ask("?"), /^T05/); // stopped at the first instruction
  await conn.write(framePacket("vCont;c"));
  await new Promise((r) => setTimeout(r, 1500)); // it spins meanwhile
  await conn.write(new Uint8Array([0x03]));
  match((await read(PACKET))[1], /^T02/); // SIGINT
  const rip = BigInt("0x" + ((await ask("p10")).match(/../g) ?? []).reverse().join(""));
  const nm = await new Deno.Command("nm", { args: [bin], stdout: "piped" }).output();
  const spin = BigInt("0x" + /^([0-9a-f]+) T spin$/m.exec(decoder.decode(nm.stdout))![1]);
  ok(rip >= spin && rip < spin + 64n, `rip 0x${rip.toString(16)} is not in spin()`);
  await ask("vKill;1");
  conn.close();
  const vm = await done;
  equal(vm.code, 137);
  equal(vm.stdout, "spinning\n");
});

Deno.test("gdb packets: checksums, escapes, run-length encoding, a split stream", () => {
  const enc = (t: string) => new TextEncoder().encode(t);
  equal(decoder.decode(framePacket("OK")), "$OK#9a");
  const binary = new Uint8Array([0x24, 0x23, 0x7d, 0x2a, 0, 0xff]);
  deepStrictEqual(unescapeBinary(escapeBinary(binary)), binary);
  equal(decoder.decode(escapeBinary(binary)).includes("$"), false);
  deepStrictEqual(expandRle(enc("0* ")), enc("0000")); // ' ' is 32: three more
  const p = new PacketParser();
  const stream = enc("+$g#67\x03$m0,4#fd$qC#00");
  for (const b of stream) p.push(new Uint8Array([b])); // byte by byte
  deepStrictEqual(p.next(), { kind: "ack", ok: true });
  deepStrictEqual(p.next(), { kind: "packet", payload: enc("g") });
  deepStrictEqual(p.next(), { kind: "interrupt" });
  deepStrictEqual(p.next(), { kind: "packet", payload: enc("m0,4") });
  deepStrictEqual(p.next(), { kind: "bad" }); // wrong checksum
  equal(p.next(), undefined);
});

Deno.test("gdb: a forked child runs past the parent's breakpoints; vfork copies keep them", async () => {
  for (const tc of ["glibc-static", "musl-static"] as const) {
    const bin = await target(tc, "gdb_fork");
    const { gdb, vm } = await debug(bin, ["break work", "continue", "bt", "continue"]);
    // The child ran work() without a stop (an int3 left there killed it with SIGTRAP).
    match(
      vm.stdout,
      /^child: 41\nchild status 0 signaled 0\nvfork child status 5\nparent: 3\n$/,
      `${tc}: ${vm.stderr}`,
    );
    match(gdb, /Breakpoint 1, (0x[0-9a-f]+ in )?work \(x=1\)/, tc);
    equal(vm.code, 0);
  }
});
