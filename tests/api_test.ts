// The library API: boot(), Vm disposal, registry overrides, stats, errors.
import { deepStrictEqual, equal, ok, rejects } from "node:assert/strict";
import {
  boot,
  defaultRegistry,
  dropSpareMemory,
  GuestMemory,
  KvmUnavailableError,
  type SyscallCall,
  Vm,
} from "../mod.ts";
import { fixture } from "./fixtures.ts";
import { ABI } from "../src/kernel/abi.ts";

/** Captures what the guest writes to fd 1 and 2 instead of the host's. */
function capturing() {
  const out: string[] = [];
  const registry = defaultRegistry();
  const write = registry.handler(1)!, writev = registry.handler(20)!;
  const text = (call: SyscallCall, buf: bigint, len: bigint) =>
    new TextDecoder().decode(call.process.mem.slice(buf, len));
  registry.override("write", (call: SyscallCall) => {
    const [fd, buf, len] = call.args;
    if (fd !== 1n) return write(call);
    out.push(text(call, buf, len));
    return Number(len);
  });
  registry.override("writev", (call: SyscallCall) => {
    const [fd, iov, n] = call.args;
    if (fd !== 1n) return writev(call);
    let total = 0;
    for (let i = 0n; i < n; i++) {
      const len = call.process.mem.u64(iov + i * 16n + 8n);
      out.push(text(call, call.process.mem.u64(iov + i * 16n), len));
      total += Number(len);
    }
    return total;
  });
  return { registry, out };
}

Deno.test("boot() runs a program and reports status and stats", async () => {
  const { registry, out } = capturing();
  const r = await boot({ path: await fixture("getpid", "glibc-static"), registry });
  equal(r.status, 7);
  equal(r.exitCode, 7);
  equal(r.signal, undefined);
  ok(/^pid \d+\n$/.test(out.join("")));
  ok(r.stats.bootMs > 0 && r.stats.runMs > 0 && r.stats.exits > 0);
  equal(r.stats.syscalls.write, 1);
});

Deno.test("overriding a guest-served syscall routes it to the host", async () => {
  const { registry, out } = capturing();
  registry.override("getpid", () => 4242);
  await boot({ path: await fixture("getpid", "musl-static"), registry });
  equal(out.join(""), "pid 4242\n");
});

Deno.test("a handler error becomes -errno for the guest", async () => {
  const registry = defaultRegistry().override("writev", () => -9); // EBADF
  const r = await boot({ path: await fixture("hello", "musl-static"), registry });
  equal(r.status, 0); // musl ignores the failed flush at exit
});

Deno.test("a crash is returned as a report", async () => {
  const diags: string[] = [];
  const { registry } = capturing();
  const r = await boot({
    path: await fixture("null", "glibc-static"),
    registry,
    onDiagnostic: (m) => diags.push(m),
  });
  equal(r.status, 139);
  equal(r.signal, 11);
  equal(r.crash?.address, 0);
  ok(r.crash?.symbol?.startsWith("crash_here"));
  ok(diags[0].startsWith("hermitux: guest killed by SIGSEGV"));
});

Deno.test("a missing /dev/kvm is a clear error", async () => {
  await rejects(
    boot({ path: await fixture("hello", "musl-static"), kvmDevice: "/dev/no-kvm-here" }),
    (e: Error) => {
      ok(e instanceof KvmUnavailableError);
      equal(e.message.split("\n").length, 1);
      ok(e.message.startsWith("hermitux: /dev/no-kvm-here does not exist"));
      return true;
    },
  );
});

/** Open fds that belong to KVM: /dev/kvm, VMs and vCPUs. */
function kvmFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].filter((e) => {
    try {
      return Deno.readLinkSync(`/proc/self/fd/${e.name}`).includes("anon_inode:kvm");
    } catch {
      return false;
    }
  }).length;
}

/** Mappings a VM makes: guest RAM (≥ 1 GiB here) and kvm_run (anon_inode:kvm-vcpu). */
function vmMappings(): number {
  return Deno.readTextFileSync("/proc/self/maps").split("\n").filter((l) => {
    const [lo, hi] = l.split(" ")[0].split("-").map((x) => parseInt(x, 16));
    return hi - lo >= 1 << 30 || l.includes("anon_inode:kvm");
  }).length;
}

/**
 * Whether this process maps exactly [addr, addr + size) in one piece: a
 * GuestMemory's RAM (no VM ran in it, so no madvise split it). Other test
 * files share the process, so what else comes to map at `addr` once it is
 * free is unknown; the same bounds are not.
 */
function mapped(addr: bigint, size: number): boolean {
  return Deno.readTextFileSync("/proc/self/maps").split("\n").some((l) => {
    const [lo, hi] = l.split(" ")[0].split("-").map((x) => BigInt("0x" + (x || "0")));
    return lo === addr && hi === addr + BigInt(size);
  });
}

Deno.test("a disposed VM's RAM is kept for the next VM of its size, until dropped", async () => {
  await dropSpareMemory();
  const size = 64 << 20;
  const mem = GuestMemory.take(size);
  mem.bytes[ABI.USER_MIN] = 0xa5;
  mem.release(true);
  ok(mapped(mem.host, size));
  const other = GuestMemory.take(size << 1);
  equal(other === mem, false, "another size maps fresh RAM");
  other.release(false);
  const again = GuestMemory.take(size);
  equal(again, mem);
  equal(again.bytes[ABI.USER_MIN], 0, "cleared");
  again.release(false); // a VM whose thread may still run: unmapped, not kept
  await new Promise((r) => setTimeout(r, 50));
  equal(mapped(mem.host, size), false);
  GuestMemory.take(size).release(true);
  await dropSpareMemory();
  equal(mapped(mem.host, size), false);
});

Deno.test("disposing a Vm frees every fd and mapping", async () => {
  const path = await fixture("hello", "musl-static");
  const { registry } = capturing();
  { // warm-up: libc and kernel image loaded once
    await using vm = await Vm.create({ path, registry });
    await vm.run();
  }
  // What the process keeps for its next VM (machine.ts) is given back first. Under
  // --parallel other test files boot in this process too: nothing more than before.
  await dropSpareMemory();
  const fds = kvmFds(), maps = vmMappings();
  for (let i = 0; i < 20; i++) {
    await using vm = await Vm.create({ path, registry });
    if (i % 2) vm.run();
    // Alive: its RAM and kvm_run mapped, 3 fds open (it may have taken a machine
    // another file's boot left, which the counts before the loop included).
    ok(vmMappings() >= 2 && kvmFds() >= 3);
  }
  for (let i = 0;; i++) {
    await dropSpareMemory();
    const now = [kvmFds(), vmMappings()];
    if (now[0] <= fds && now[1] <= maps) break;
    if (i === 50) deepStrictEqual(now, [fds, maps]);
    await new Promise((r) => setTimeout(r, 100));
  }
});

Deno.test("a guest finds nothing of the guest before it in reused RAM", async () => {
  const path = await fixture("mem_left", "musl-static");
  for (const tc of ["musl-static", "glibc-static"] as const) {
    const path = await fixture("mem_left", tc);
    const fill = capturing(), check = capturing();
    equal((await boot({ path, args: ["fill"], registry: fill.registry })).status, 0);
    equal(fill.out.join(""), "filled\n");
    // The first run's RAM is now the spare the second one takes.
    equal((await boot({ path, args: ["check"], registry: check.registry })).status, 0);
    equal(check.out.join(""), "anonymous 0, heap 0, stack 0\n");
  }
  // Given back, the next boot maps fresh RAM.
  await dropSpareMemory();
  const check = capturing();
  equal((await boot({ path, args: ["check"], registry: check.registry })).status, 0);
  equal(check.out.join(""), "anonymous 0, heap 0, stack 0\n");
});

Deno.test("bad guest pointers give EFAULT, never a host crash", async () => {
  const { registry, out } = capturing();
  const r = await boot({ path: await fixture("syscalls", "musl-static"), registry });
  equal(r.status, 0);
  ok(out.join("").includes("bad pointer uname: -1\n"));
});

Deno.test("a user module adds syscalls; none is reported unsupported", async () => {
  const { registry, out } = capturing();
  const diags: string[] = [];
  registry.register({ name: "keys", handlers: { add_key: () => 7 } });
  equal(registry.moduleOf(248), "keys");
  await boot({
    path: await fixture("nosys", "glibc-static"),
    registry,
    onDiagnostic: (m) => diags.push(m),
  });
  equal(out.join(""), "add_key = 7 errno other\n".repeat(3));
  deepStrictEqual(diags, []);
});

Deno.test("a host write from a bad guest pointer is EFAULT", async () => {
  const registry = defaultRegistry();
  let result = 0n;
  const write = registry.handler(1)!;
  registry.override("write", (call) => {
    const bad = { ...call, args: [call.args[0], 0x10n, call.args[2], 0n, 0n, 0n] };
    try {
      return write(bad);
    } catch (e) {
      result = BigInt(-(e as { errno: number }).errno);
      throw e;
    }
  });
  const r = await boot({ path: await fixture("hello", "glibc-static"), registry });
  equal(result, -14n);
  equal(r.status, 0);
});
