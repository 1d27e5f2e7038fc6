// Syscall rewriting without page 0 (--rewrite=stub, the default on kvm_pvm;
// docs/REWRITING.md): `mov $NR, %eax; syscall` sites (and other 5-byte
// instructions before a syscall) become a jmp to a stub and a ud2, jumps onto
// the old syscall are served as it, genuine ud2s and NULL reads fault as
// natively, a fault in a stub's copy of an instruction shows at the
// instruction, b8 bytes inside longer instructions are left alone, and
// threads running sites while they are rewritten see no harm.
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { compileC, fixture, runHermitux, runNative, type Toolchain } from "./fixtures.ts";
import { siteShape } from "../src/analysis/boundary.ts";
import { parseElf } from "../src/loader/elf.ts";

const TOOLCHAINS: Toolchain[] = [
  "musl-static",
  "glibc-static",
  "glibc-static-pie",
  "glibc-dynamic",
  "musl-dynamic",
];
const PVM = await Deno.stat("/sys/module/kvm_pvm").then(() => true, () => false);
const UNSUPPORTED_600 = "hermitux: unsupported syscall syscall_600 (600)\n";

/** The run's "rewritten ..." line (stderr), and the rest of stderr. */
function split(stderr: string): { states: string; rest: string } {
  const states = stderr.match(/^rewritten .*$/m)?.[0] ?? "";
  return { states, rest: stderr.replace(/^rewritten .*\n/m, "") };
}

for (const tc of TOOLCHAINS) {
  Deno.test(`${tc}: --rewrite=stub serves jumps onto a rewritten syscall; ud2 and NULL fault as natively`, async () => {
    const bin = await fixture("stub_site", tc);
    const [native, stub, off] = await Promise.all([
      runNative(bin),
      runHermitux(bin, [], { flags: ["--rewrite=stub"] }),
      runHermitux(bin, [], { flags: ["--rewrite=off"] }),
    ]);
    match(native.stdout, /^SIGILL code 2 addr the_ud2 at the_ud2$/m);
    match(native.stdout, /^SIGSEGV code 1 addr 0x18 at elsewhere$/m);
    match(native.stdout, /^short site 1 1, jump onto it 1$/m);
    // The load faults in its stub under hermitux: the handler sees its own address.
    match(native.stdout, /^SIGSEGV code 1 addr 0x18 at the_load$/m);
    match(native.stdout, /^b8 inside longer instructions: r8 39 39, lea 78 78$/m);
    equal(
      split(native.stderr).states,
      "rewritten site no straddling no load no short no r8 no lea no genuine ud2",
    );
    for (const vm of [stub, off]) {
      equal(vm.stdout, native.stdout);
      equal(vm.code, native.code);
      equal(split(vm.stderr).rest, UNSUPPORTED_600);
    }
    equal(split(off.stderr).states, split(native.stderr).states);
    // The wrapper sites rewritten (single-threaded, so even the one
    // straddling a 16-byte block), the load's and the 2-byte one's too; b8
    // inside longer instructions left alone.
    equal(
      split(stub.stderr).states,
      "rewritten site yes straddling yes load yes short yes r8 no lea no genuine ud2",
    );
  });
}

Deno.test("by default (--rewrite=auto) sites are rewritten and page 0 stays unmapped: NULL reads fault", async () => {
  const bin = await fixture("stub_site", "glibc-static");
  const [native, vm] = await Promise.all([
    runNative(bin),
    runHermitux(bin, [], { flags: ["--rewrite=auto", "--stats"] }),
  ]);
  equal(vm.stdout, native.stdout);
  match(vm.stdout, /^SIGSEGV code 1 addr 0x18 at elsewhere$/m);
  const stats = JSON.parse(vm.stderr.match(/^hermitux: stats (.*)$/m)![1]);
  // On hardware KVM a trap is cheap and auto leaves code alone.
  equal(stats.rewrite.mode, PVM ? "stub" : "off");
  equal(
    split(vm.stderr).states,
    PVM
      ? "rewritten site yes straddling yes load yes short yes r8 no lea no genuine ud2"
      : split(native.stderr).states,
  );
  if (PVM) {
    ok(stats.rewrite.sites >= 2, JSON.stringify(stats.rewrite));
    // The five jumps onto an old syscall came through its ud2.
    equal(stats.rewrite.ud2, 5);
  }
});

for (const tc of ["glibc-static", "glibc-dynamic", "musl-static", "musl-dynamic"] as Toolchain[]) {
  Deno.test(`${tc}: threads running sites while they are rewritten get every result right`, async () => {
    const bin = await fixture("stub_threads", tc);
    const [native, vm] = await Promise.all([
      runNative(bin),
      runHermitux(bin, [], { flags: ["--rewrite=stub"] }),
    ]);
    equal(native.stdout, "4 threads x 27000 calls: 0 wrong\n");
    deepStrictEqual({ ...vm, stderr: "" }, { ...native, stderr: "" });
    equal(split(native.stderr).states, "rewritten no no no no no no no no no");
    // Eight aligned sites rewritten; the one whose mov straddles a 16-byte
    // block is not (another thread might see a torn write).
    equal(split(vm.stderr).states, "rewritten yes yes yes yes yes yes yes yes no");
  });
}

Deno.test("--verbose says which rewriting was chosen and why", async () => {
  const bin = await fixture("hello", "musl-static");
  const line = async (flags: string[]) =>
    (await runHermitux(bin, [], { flags: ["--verbose", ...flags] })).stderr.split("\n")[0];
  match(await line(["--rewrite=lazy"]), /, rewrite lazy \(as asked\)$/);
  match(
    await line(["--rewrite=auto"]),
    PVM
      ? /, rewrite stub \(.*a syscall trap of [\d.]+ µs \(3 µs or more\) pays for rewriting; /
      : /, rewrite off \(/,
  );
  const bad = await runHermitux(bin, [], { flags: ["--rewrite=maybe"] });
  equal(bad.code, 2);
  match(bad.stderr, /bad --rewrite 'maybe' \(use auto, stub, off, lazy or static\)/);
});

Deno.test("musl's syscall(): the site after a 4-byte mov is rewritten through the alignment padding past the function", async () => {
  // musl's generic syscall() ends in `call __stack_chk_fail`; the only 5
  // bytes that never run within reach of its site are the nops the linker
  // put after it to align the next function.
  const bin = await compileC(
    "stub_musl_syscall",
    `#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(void) {
	long same = 0;
	for (int i = 0; i < 1000; i++) same += syscall(SYS_getpid) == getpid();
	printf("%ld of 1000 the same\\n", same);
	return 0;
}
`,
    "musl-gcc",
    ["-static", "-O2"],
  );
  const elf = parseElf(Deno.readFileSync(bin), bin);
  const fn = elf.symbols.find((s) => s.name === "syscall" && s.size > 0)!;
  const bytes = Deno.readFileSync(bin);
  const text = elf.segments.find((s) => s.vaddr <= fn.value && fn.value < s.vaddr + s.filesz)!;
  const at = fn.value - text.vaddr + text.offset;
  const i = bytes.subarray(at, at + fn.size).findIndex((b, k, a) =>
    b === 0x0f && a[k + 1] === 0x05
  );
  const shape = siteShape(bytes, elf, fn.value + i);
  ok(shape && shape.len < 5 && shape.pads.some((p) => p >= fn.value + fn.size), `${shape}`);
  const [native, vm] = await Promise.all([
    runNative(bin),
    runHermitux(bin, [], { flags: ["--rewrite=stub", "--stats"] }),
  ]);
  equal(native.stdout, "1000 of 1000 the same\n");
  equal(vm.stdout, native.stdout);
  const stats = JSON.parse(vm.stderr.match(/^hermitux: stats (.*)$/m)![1]);
  // Without the padding past the function each of the 1000 calls traps.
  ok(stats.rewrite.sites >= 2 && stats.rewrite.traps < 100, JSON.stringify(stats.rewrite));
});
