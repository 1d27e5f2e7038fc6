// What the process table does with machines and counters: the VMs of
// ended processes are recycled for the next fork or execve (machine.ts),
// and no process sees what an earlier one left in them; --stats gives a
// line per process and the totals.
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { fixture, runHermitux, runNative, type Toolchain } from "./fixtures.ts";
import { Machine, MachinePool } from "../src/vm/machine.ts";
import { libc } from "../src/kvm/libc.ts";
import { runnerCounts } from "../src/runner/mod.ts";
import { copyNonzero } from "../src/runner/copy.ts";
import { boot } from "../mod.ts";

const BUILDS: Toolchain[] = ["glibc-dynamic", "glibc-static", "musl-static"];

for (const tc of BUILDS) {
  Deno.test(`${tc}: children on recycled machines see nothing of the ones before`, async () => {
    const bin = await fixture("proc_recycle", tc);
    const dir = bin.slice(0, bin.lastIndexOf("/"));
    const flags = ["--timeout", "120", "--mount", `${dir}:${dir}:ro`];
    const [native, vm] = await Promise.all([runNative(bin), runHermitux(bin, [], { flags })]);
    deepStrictEqual(vm, native);
    for (let round = 1; round <= 6; round++) {
      match(
        vm.stdout,
        new RegExp(
          `^round ${round}: inherited bytes changed 0, fresh mmap nonzero 0, fresh heap nonzero 0\\nchild: exited ${round}$`,
          "m",
        ),
      );
    }
    match(
      vm.stdout,
      /^(exec image: static buffer nonzero 0, fresh mmap nonzero 0\nexec child: exited 0\n){2}/m,
    );
    match(vm.stdout, /^parent buffer still 0x5a: 1$/m);
  });
}

Deno.test("--stats: a line per process, by pid, and the totals", async () => {
  const out = await runHermitux("/bin/dash", ["-c", "/bin/true; echo hi | cat"], {
    flags: ["--timeout", "120", "--stats"],
  });
  equal(out.code, 0);
  equal(out.stdout, "hi\n");
  const lines = out.stderr.split("\n").filter((l) => l.startsWith("hermitux: pid "));
  equal(lines.length, 4, out.stderr);
  const pids = lines.map((l) => Number(/pid (\d+)/.exec(l)![1]));
  const ppids = lines.map((l) => Number(/ppid (\d+)/.exec(l)![1]));
  deepStrictEqual([...pids].sort((a, b) => a - b), pids); // the first one first, then by pid
  for (const ppid of ppids.slice(1)) equal(ppid, pids[0]); // dash started them all
  match(lines[0], /status 0: 1 image, .* host calls .*: \/bin\/dash -c/);
  match(out.stderr, /^hermitux: pid \d+ .*status 0: 2 images, .*: \/bin\/true$/m);
  match(out.stderr, /^hermitux: 4 processes: [\d.]+ ms, \d+ exits, \d+ host calls/m);
});

for (const tc of BUILDS) {
  Deno.test(`${tc}: MAP_SHARED memory shared by processes and coherent with write(2)`, async () => {
    const bin = await fixture("shm_fork", tc);
    const dir = await Deno.makeTempDir({ prefix: "hermitux-shm-" });
    try {
      const flags = ["--timeout", "120", "--memfs", "/dev/shm"];
      const native = await runNative(bin, [], { cwd: dir });
      const vm = await runHermitux(bin, [], { cwd: dir, flags });
      deepStrictEqual(vm, native);
      equal(vm.code, 0);
      match(vm.stdout, /^anonymous: counter 400 text 'written by the child'$/m);
      match(vm.stdout, /^after the child's munmap: counter 400 text 'written by the child'$/m);
      match(vm.stdout, /^grandchild wrote 1000$/m);
      match(
        vm.stdout,
        /^pwrite seen through the mapping: 1\nmapping's bytes seen by pread without msync: 1$/m,
      );
      match(vm.stdout, /^the child's write through its mapping: 1\nand in the file: 1$/m);
      match(vm.stdout, /^after truncation, page 0 holds: 1\nfile size 4096$/m);
      match(vm.stdout, /^\/dev\/zero shared: 42$/m);
      match(vm.stdout, /^named semaphore posted by the child$/m);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("the machine pool: a flushed machine first; after two waits, a second machine", () => {
  // Stand-ins with what MachinePool touches: the size, whether the slot flush runs, recycle.
  const fake = (name: string) => ({
    name,
    mem: { size: 1 << 30 },
    flushing: false,
    poolSlot: false,
    recycled: 0,
    recycle() {
      this.recycled++;
      this.flushing = false; // recycle waits for the flush
    },
    flushLater() {
      this.flushing = true;
    },
    dispose() {},
  });
  const pool = new MachinePool();
  const a = fake("a"), b = fake("b");
  const give = (m: ReturnType<typeof fake>) => pool.give(m as unknown as Machine);
  const take = () => (pool.take(1 << 30, false) as unknown as { name: string } | undefined)?.name;
  equal(take(), undefined); // none kept
  // A fork loop: the machine comes back mid-flush, and is wanted at once.
  give(a);
  equal(take(), "a"); // a wait
  give(a);
  equal(take(), "a"); // a second wait
  give(a);
  equal(take(), undefined); // the caller makes a second machine (a stays kept)
  give(b); // the second machine's process ended
  a.flushing = false; // a's flush is done, b's is not
  equal(take(), "a");
  equal(take(), undefined); // b alone, mid-flush: another is made, no wait
  b.flushing = false;
  equal(take(), "b");
  equal(a.recycled + b.recycled, 4);
});

Deno.test("a kept machine's flush thread clears what its last process left", () => {
  const size = 64 << 20, pool = new MachinePool(), pages = size / 4096;
  const m = Machine.create(size);
  const resident = () => {
    const v = new Uint8Array(pages);
    equal(libc().mincore(m.mem.host, BigInt(size), v), 0);
    return v.reduce((n, b) => n + (b & 1), 0);
  };
  // Given back, then taken once its flush thread is done (the pool takes a
  // machine mid-flush twice at most: a third take makes a new machine).
  const cycle = (zero: boolean) => {
    pool.give(m);
    while (m.flushing) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    ok(pool.take(size, zero) === m, "the kept machine was not taken");
  };
  try {
    // A few pages: cleared in place (they stay resident).
    const touched = [0x1000, (2 << 20) + 0x5000, size - 0x1000];
    for (const at of touched) m.mem.bytes[at] = 1;
    const before = resident();
    cycle(false);
    ok(m.clean, "not cleared on the flush thread");
    equal(resident(), before);
    for (const at of touched) equal(m.mem.bytes[at], 0);
    // More than it clears in place: left for the next process (a fork copies over them).
    m.mem.bytes.fill(7, 0, 40 << 20);
    cycle(false);
    ok(!m.clean, "40 MiB cleared on the flush thread");
    equal(m.mem.bytes[20 << 20], 7);
    // An execve's image takes it zeroed all the same (on its path).
    cycle(true);
    equal(m.mem.bytes[20 << 20], 0);
  } finally {
    pool.dispose();
    m.dispose(true);
  }
});

Deno.test("a fork's copy into zeroed RAM writes only the pages that are not all zero", () => {
  const pages = 8, src = new Uint8Array(pages * 4096), dst = new Uint8Array(pages * 4096);
  // Pages 1, 2 and 6 hold data (page 6 in its last byte only); the others are zero.
  src.fill(3, 4096, 3 * 4096);
  src[7 * 4096 - 1] = 9;
  dst.fill(0xaa); // marks what the copy leaves alone
  const at = (a: Uint8Array) => Deno.UnsafePointer.value(Deno.UnsafePointer.of(a));
  equal(copyNonzero(at(dst), at(src), src.length), 3 * 4096);
  for (let p = 0; p < pages; p++) {
    const page = dst.subarray(p * 4096, (p + 1) * 4096);
    const want = p === 1 || p === 2 || p === 6 ? src.subarray(p * 4096, (p + 1) * 4096) : undefined;
    ok(want ? page.every((b, i) => b === want[i]) : page.every((b) => b === 0xaa), `page ${p}`);
  }
});

for (const tc of ["glibc-static", "musl-static"] as const) {
  Deno.test(`${tc}: runner threads are reused, and a vfork child runs on its parent's`, async () => {
    const bin = await fixture("proc_spawns", tc);
    const dir = bin.slice(0, bin.lastIndexOf("/"));
    const n = 40, before = { ...runnerCounts };
    const r = await boot({
      path: bin,
      args: [String(n)],
      mounts: [{ host: dir, guest: dir, readOnly: true }],
      stdout: "piped",
    });
    equal(r.status, 0);
    equal(new TextDecoder().decode(r.stdout), `spawns ${n}, failed 0\n`);
    const started = runnerCounts.started - before.started;
    const taken = started + runnerCounts.reused - before.reused;
    // A thread for vCPU 0 and one for each image execve makes: a few new, the rest reused.
    ok(started <= 6, `${started} runner threads started for ${n} spawns`);
    // One per spawn (the image the child execs): the vfork child borrows its parent's.
    ok(taken >= n && taken <= n + 4, `${taken} runner threads taken for ${n} spawns`);
  });
}
