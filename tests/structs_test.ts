// The struct layouts in src/kvm/structs.ts against <linux/kvm.h>, via a C
// program that prints sizeof/offsetof for every field the TypeScript uses.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
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
