// The struct layouts in src/kvm/structs.ts against <linux/kvm.h>, via a C
// program that prints sizeof/offsetof for every field the TypeScript uses.
import { deepStrictEqual as assertEquals, equal, ok, throws } from "node:assert/strict";
import { LAYOUTS } from "../src/kvm/structs.ts";
import { compileC } from "./fixtures.ts";

Deno.test("kvm struct layouts match <linux/kvm.h>", async () => {
  const lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <linux/kvm.h>"];
  lines.push("int main(void) {");
  for (const [name, layout] of Object.entries(LAYOUTS)) {
    lines.push(`printf("%s %zu\\n", "${name}", sizeof(struct ${name}));`);
    for (const field of Object.keys(layout.fields)) {
      lines.push(`printf("%s %zu\\n", "${name}.${field}", offsetof(struct ${name}, ${field}));`);
    }
  }
  lines.push("return 0; }");
  const bin = await compileC("layouts", lines.join("\n"), "gcc", []);
  const out = new TextDecoder().decode((await new Deno.Command(bin).output()).stdout);
  const fromC = Object.fromEntries(
    out.trim().split("\n").map((l) => {
      const [k, v] = l.split(" ");
      return [k, Number(v)];
    }),
  );
  const fromTs: Record<string, number> = {};
  for (const [name, layout] of Object.entries(LAYOUTS)) {
    fromTs[name] = layout.size;
    for (const [field, off] of Object.entries(layout.fields)) fromTs[`${name}.${field}`] = off;
  }
  assertEquals(fromTs, fromC);
});

Deno.test("kvm ioctl numbers match <linux/kvm.h>", async () => {
  const { KVM } = await import("../src/kvm/ioctls.ts");
  const lines = ["#include <stdio.h>", "#include <linux/kvm.h>", "int main(void) {"];
  for (const name of Object.keys(KVM)) {
    lines.push(`printf("%s %lu\\n", "${name}", (unsigned long)KVM_${name});`);
  }
  lines.push("return 0; }");
  const bin = await compileC("ioctls", lines.join("\n"), "gcc", []);
  const out = new TextDecoder().decode((await new Deno.Command(bin).output()).stdout);
  const fromC = Object.fromEntries(
    out.trim().split("\n").map((l) => {
      const [k, v] = l.split(" ");
      return [k, Number(v)];
    }),
  );
  assertEquals({ ...KVM }, fromC);
});

Deno.test("KVM_CREATE_VM: EAGAIN (kvm_pvm, VMs coming and going) is tried again, then reported", async () => {
  const { Kvm } = await import("../src/kvm/ioctls.ts");
  const { libc } = await import("../src/kvm/libc.ts");
  const { hostSyscall } = await import("../src/syscalls/host.ts");
  const fds = new Int32Array(2);
  equal(hostSyscall(293, Deno.UnsafePointer.value(Deno.UnsafePointer.of(fds)), 0o4000), 0); // pipe2(O_NONBLOCK)
  const scratch = new Uint8Array(8);
  const buf = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(scratch)));
  const t = libc() as unknown as Record<string, (...a: unknown[]) => unknown>;
  const real = t.ioctl_u64;
  const kvm = new Kvm();
  let fail = 3, tries = 0;
  // A read of the empty pipe leaves errno EAGAIN, as KVM's refusal would.
  t.ioctl_u64 = (fd, req, arg) => {
    if (fd !== kvm.fd || req !== 0xae01) return real(fd, req, arg);
    tries++;
    if (fail-- > 0) return libc().read(fds[0], buf, 1n) && -1;
    return real(fd, req, arg);
  };
  try {
    const vm = kvm.createVm();
    equal(tries, 4);
    ok(vm.fd >= 0);
    await vm.closeInBackground();
    fail = 1_000; // refused for good: the error after ~0.5 s of tries
    const t0 = performance.now();
    throws(() => kvm.createVm(), /KVM_CREATE_VM: Resource temporarily unavailable/);
    ok(performance.now() - t0 >= 400);
  } finally {
    t.ioctl_u64 = real;
    kvm.close();
    hostSyscall(3, fds[0]);
    hostSyscall(3, fds[1]);
  }
});
