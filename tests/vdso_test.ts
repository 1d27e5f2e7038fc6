// The vDSO (src/kernel/vdso, docs/VDSO.md): programs find it through
// AT_SYSINFO_EHDR as on Linux, its clocks agree with native ones, and the
// libcs' clock calls go through it, never trapping into the guest kernel.
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import {
  assertSameAsNative,
  fixture,
  runHermitux,
  type Toolchain,
  TOOLCHAINS,
} from "./fixtures.ts";
import { kernelImage } from "../src/kernel/image.ts";

/** What a run of the fixture prints (natively too) that shows the vDSO was used. */
const EXPECTED = [
  "AT_SYSINFO_EHDR present: 1",
  "DT_HASH 1 DT_GNU_HASH 1 DT_VERSYM 1 DT_VERDEF 1 soname linux-vdso.so.1",
  "__vdso_clock_gettime@LINUX_2.6: 1",
  "__vdso_getcpu@LINUX_2.6: 1",
  "clock MONOTONIC: 20000 calls, went back 0 times",
  "unknown clock: libc -1 EINVAL vDSO -22",
  "vDSO getcpu: 0 cpu set 1 node set 1",
  "maps: [vdso] r-xp at AT_SYSINFO_EHDR 1, [vvar] r--p 1",
  "child: same vDSO 1, clock forward 1, by less than a minute 1",
  "timer signals: at least 5, clock went back 0 times",
];

/** Syscalls that read the clock (or the CPU) and a vDSO serves. */
const CLOCK_CALLS = /^(clock_gettime|gettimeofday|time|getcpu)\((\w+)/;
/** Clock ids the vDSO leaves to the syscall: the CPU-time clocks and an unknown one. */
const SYSCALL_CLOCKS = new Set(["2", "3", "1234"]);

/** The fixture execs itself: its folder is mounted. */
function mount(bin: string): string[] {
  const dir = bin.slice(0, bin.lastIndexOf("/"));
  return ["--mount", `${dir}:${dir}:ro`];
}

for (const tc of Object.keys(TOOLCHAINS) as Toolchain[]) {
  Deno.test(`${tc}: the vDSO's clocks as natively`, async () => {
    const bin = await fixture("vdso", tc);
    const out = await assertSameAsNative(bin, [], { flags: mount(bin) });
    equal(out.code, 0);
    const lines = out.stdout.split("\n");
    for (const want of EXPECTED) ok(lines.includes(want), `missing: ${want}\n${out.stdout}`);
  });

  Deno.test(`${tc}: clock calls do not trap (--trace shows only the CPU clocks)`, async () => {
    const bin = await fixture("vdso", tc);
    const out = await runHermitux(bin, [], { flags: ["--trace", ...mount(bin)] });
    equal(out.code, 0, out.stderr.slice(-2000));
    const calls = out.stderr.split("\n").flatMap((l) => {
      const m = CLOCK_CALLS.exec(l);
      return m ? [`${m[1]}(${m[2]})`] : [];
    });
    // The fixture makes > 100,000 clock calls; a vDSO that libc did not
    // use shows here as clock_gettime(1), gettimeofday(…), time(…).
    deepStrictEqual(
      calls.filter((c) => !c.startsWith("clock_gettime(") || !SYSCALL_CLOCKS.has(c.slice(14, -1))),
      [],
    );
    ok(calls.length <= 12, calls.join(" "));
  });
}

Deno.test("the vDSO image: a shared object at address 0 with no relocations", async () => {
  const { vdso } = await kernelImage();
  const v = new DataView(vdso.buffer, vdso.byteOffset, vdso.byteLength);
  deepStrictEqual([...vdso.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
  equal(v.getUint16(16, true), 3, "ET_DYN");
  const phoff = Number(v.getBigUint64(32, true)), phnum = v.getUint16(56, true);
  const PT_LOAD = 1, PT_DYNAMIC = 2, PT_INTERP = 3;
  const types: number[] = [];
  let dynamic = -1;
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * 56, type = v.getUint32(o, true);
    types.push(type);
    if (type === PT_LOAD) {
      equal(Number(v.getBigUint64(o + 8, true)), 0, "PT_LOAD offset");
      equal(Number(v.getBigUint64(o + 16, true)), 0, "PT_LOAD address");
      ok(Number(v.getBigUint64(o + 32, true)) <= vdso.length, "PT_LOAD within the file");
    }
    if (type === PT_DYNAMIC) dynamic = Number(v.getBigUint64(o + 8, true));
  }
  equal(types.filter((t) => t === PT_LOAD).length, 1);
  ok(!types.includes(PT_INTERP));
  ok(dynamic > 0);
  // DT_RELA, DT_REL, DT_TEXTREL, DT_JMPREL, DT_RELR: none.
  const RELOCS = new Set([7, 17, 22, 23, 36]);
  for (let o = dynamic; v.getBigInt64(o, true) !== 0n; o += 16) {
    ok(!RELOCS.has(Number(v.getBigInt64(o, true))), `dynamic tag ${v.getBigInt64(o, true)}`);
  }
});
