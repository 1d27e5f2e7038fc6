// src/kernel/abi.ts must say what src/kernel/abi.h says.
import { deepStrictEqual } from "node:assert/strict";
import { ABI, BOOT_INFO, BOOT_MAGIC, HOSTCALL, PERCPU, REGION } from "../src/kernel/abi.ts";
import { compileC } from "./fixtures.ts";

Deno.test("abi.ts mirrors abi.h", async () => {
  const inc = new URL("../src/kernel/", import.meta.url).pathname;
  const lines = [
    "#include <stdio.h>",
    "#include <stddef.h>",
    '#include "abi.h"',
    "int main(void) {",
  ];
  for (const k of Object.keys(ABI)) {
    lines.push(`printf("${k} %llu\\n", (unsigned long long)(${k}));`);
  }
  lines.push(`printf("magic %llu\\n", (unsigned long long)BOOT_MAGIC);`);
  for (
    const [s, fields] of [["boot_info", BOOT_INFO], ["hostcall", HOSTCALL], ["region", REGION], [
      "percpu",
      PERCPU,
    ]] as const
  ) {
    for (const f of Object.keys(fields)) {
      const expr = f === "size" ? `sizeof(struct ${s})` : `offsetof(struct ${s}, ${f})`;
      lines.push(`printf("${s}.${f} %zu\\n", ${expr});`);
    }
  }
  lines.push("return 0; }");
  const bin = await compileC("abi", lines.join("\n"), "gcc", [`-I${inc}`]);
  const out = new TextDecoder().decode((await new Deno.Command(bin).output()).stdout);
  const got = Object.fromEntries(out.trim().split("\n").map((l) => l.split(" ")));
  const want: Record<string, string> = { magic: BOOT_MAGIC.toString() };
  for (const [k, v] of Object.entries(ABI)) want[k] = String(v);
  for (
    const [s, fields] of [["boot_info", BOOT_INFO], ["hostcall", HOSTCALL], ["region", REGION], [
      "percpu",
      PERCPU,
    ]] as const
  ) {
    for (const [f, v] of Object.entries(fields)) want[`${s}.${f}`] = String(v);
  }
  deepStrictEqual(got, want);
});
