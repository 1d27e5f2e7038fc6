// The host-built page tables and what a shadow MMU makes of them: accessed
// and dirty bits set up front, 2 MiB chunks split for protections and
// merged back, and the page faults KVM counts for a dynamic program.
import { deepStrictEqual, equal, match, notEqual, ok } from "node:assert/strict";
import { buildPageTables } from "../src/loader/paging.ts";
import { detectPlatform } from "../src/kvm/platform.ts";
import { GuestMemory } from "../src/vm/memory.ts";
import { PageProtections } from "../src/vm/protect.ts";
import { fixture, runHermitux } from "./fixtures.ts";
import { relroHint } from "../src/loader/relro.ts";

const MIB2 = 0x200000, PAGE = 0x1000;
const P = 1n, RW = 2n, A = 0x20n, D = 0x40n, PS = 0x80n, ADDR = 0x000f_ffff_ffff_f000n;

/** The directory entry that maps `addr` (first GiB). */
function pde(mem: GuestMemory, cr3: bigint, addr: number): bigint {
  const v = mem.view;
  const pdpt = Number(v.getBigUint64(Number(cr3), true) & ADDR);
  const pd = Number(v.getBigUint64(pdpt, true) & ADDR);
  return v.getBigUint64(pd + (addr / MIB2 | 0) * 8, true);
}

function pte(mem: GuestMemory, cr3: bigint, addr: number): bigint {
  const table = Number(pde(mem, cr3, addr) & ADDR);
  return mem.view.getBigUint64(table + ((addr % MIB2) / PAGE) * 8, true);
}

/** Runs `f` on 16 MiB of guest memory with fresh tables, a table pool at 12 MiB. */
function withTables(f: (mem: GuestMemory, cr3: bigint, prot: PageProtections) => void): void {
  const mem = new GuestMemory(8 * MIB2);
  try {
    const cr3 = buildPageTables(mem);
    f(mem, cr3, new PageProtections(mem, cr3, [6 * MIB2, 7 * MIB2], () => []));
  } finally {
    mem.free();
  }
}

Deno.test("page tables: entries start accessed and dirty", () => {
  withTables((mem, cr3) => {
    const e = pde(mem, cr3, 3 * MIB2);
    equal(e & (P | RW | A | D | PS), P | RW | A | D | PS);
    equal(e & ADDR, BigInt(3 * MIB2));
  });
});

Deno.test("page tables: a chunk split for a protection is merged when it is reset", () => {
  withTables((mem, cr3, prot) => {
    const at = 2 * MIB2 + 5 * PAGE;
    ok(prot.apply(at, at + 2 * PAGE, "read"));
    equal(pde(mem, cr3, at) & PS, 0n, "split into 4 KiB entries");
    const table = pde(mem, cr3, at) & ADDR;
    equal(pte(mem, cr3, at), BigInt(at) | P | A | D | 4n, "read-only, accessed, dirty");
    equal(pte(mem, cr3, at + 2 * PAGE) & RW, RW, "the rest stays writable");
    // Half back: still split. All back: one 2 MiB entry again.
    ok(prot.apply(at, at + PAGE, "default"));
    equal(pde(mem, cr3, at) & PS, 0n);
    ok(prot.apply(at + PAGE, at + 2 * PAGE, "default"));
    equal(pde(mem, cr3, at), BigInt(2 * MIB2) | P | RW | 4n | A | D | PS);
    // Split again, the chunk gets the same table (KVM may still shadow it).
    ok(prot.apply(at, at + PAGE, "none"));
    equal(pde(mem, cr3, at) & ADDR, table);
    equal(pte(mem, cr3, at) & P, 0n);
  });
});

Deno.test("page tables: pages past a file's end keep their chunk split", () => {
  withTables((mem, cr3, prot) => {
    const at = 4 * MIB2 + 7 * PAGE;
    ok(prot.pastEnd(at, at + PAGE));
    ok(prot.apply(4 * MIB2, at, "default"));
    equal(pde(mem, cr3, at) & PS, 0n);
    equal(pte(mem, cr3, at) & P, 0n);
    ok(prot.apply(at, at + PAGE, "default", true)); // the mapping is gone
    notEqual(pde(mem, cr3, at) & PS, 0n);
  });
});

// Guests run as child processes here: api_test.ts counts this process's
// KVM fds and mappings, and test files share a process under --parallel.
async function stats(bin: string, flags: string[] = []) {
  const r = await runHermitux(bin, [], { flags: ["--stats", ...flags] });
  equal(r.code, 0, r.stderr);
  return JSON.parse(r.stderr.split("hermitux: stats ")[1]);
}

Deno.test("stats: KVM's own counters for the run", async () => {
  const s = await stats(await fixture("hello", "glibc-static"));
  if (Object.keys(s.kvm).length === 0) return; // a kernel before 5.14
  ok(s.kvm.exits >= s.exits, JSON.stringify(s.kvm));
  ok(!Object.values(s.kvm).includes(0), "zero counters are left out");
});

// On kvm_pvm every page KVM maps for the guest is a fault of its own, about
// as costly as an exit. A dynamic hello took 163 before the accessed and
// dirty bits were set, chunks merged and partial chunks cleared in place,
// 41 before libraries were placed with RELRO on a 2 MiB boundary, 19 now.
Deno.test({
  name: "stats: a dynamic program starts with few shadow page faults (kvm_pvm)",
  ignore: detectPlatform() !== "kvm_pvm",
  async fn() {
    const mounts = ["/usr", "/lib", "/lib64"].flatMap((d) => ["--mount", `${d}:${d}:ro`]);
    const s = await stats(await fixture("hello", "glibc-dynamic"), [
      "--no-default-mounts",
      ...mounts,
    ]);
    const faults = s.kvm.pf_fixed;
    ok(faults > 0 && faults < 30, `pf_fixed ${faults}`);
  },
});

Deno.test("relro: where a library's RELRO starts, from its headers (libc, against readelf)", async () => {
  const lib = "/lib/x86_64-linux-gnu/libc.so.6";
  const out = new TextDecoder().decode(
    (await new Deno.Command("readelf", { args: ["-lW", lib] }).output()).stdout,
  );
  const rows = out.split("\n").map((l) => l.trim().split(/\s+/));
  const loads = rows.filter((r) => r[0] === "LOAD"),
    relro = rows.find((r) => r[0] === "GNU_RELRO")!;
  const first = Number(loads[0][2]) & ~0xfff;
  const end = Math.max(...loads.map((r) => Number(r[2]) + Number(r[5])));
  const want = {
    phase: (Number(relro[2]) & ~0xfff) - first,
    extent: Math.ceil(end / 4096) * 4096 - first,
  };
  deepStrictEqual(relroHint(await Deno.readFile(lib)), want);
  equal(relroHint(new Uint8Array(64)), undefined);
});

Deno.test("relro: ld.so and the libraries it maps get RELRO on a 2 MiB boundary", async () => {
  const mounts = ["/usr", "/lib", "/lib64"].flatMap((d) => ["--mount", `${d}:${d}:ro`]);
  const r = await runHermitux(await fixture("relro_place", "glibc-dynamic"), [], {
    flags: ["--no-default-mounts", ...mounts],
  });
  equal(r.code, 0, r.stderr);
  match(r.stdout, /^libc\.so\.6 relro on 2 MiB: 1$/m);
  match(r.stdout, /^ld-linux-x86-64\.so\.2 relro on 2 MiB: 1$/m);
});
