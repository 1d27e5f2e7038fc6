// The syscall support table (docs/SYSCALLS.md) matches the code, and the
// guest kernel's TypeScript list matches its C table.
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { supportMarkdown, type SupportRow, supportTable } from "../src/syscalls/support.ts";
import { DEFAULT_MODULES, defaultRegistry } from "../src/syscalls/mod.ts";
import { SYSCALL_NAMES, SYSCALL_NUMBERS, syscallName } from "../src/syscalls/table.ts";
import { GUEST_FORWARDS, GUEST_SYSCALLS } from "../src/kernel/local.ts";

const ROOT = new URL("../", import.meta.url);
const KERNEL = new URL("src/kernel/", ROOT);

function numbersOf(names: readonly string[]): number[] {
  return names.map((n) => {
    const nr = SYSCALL_NUMBERS.get(n);
    ok(nr !== undefined, `unknown syscall name ${n}`);
    return nr;
  }).sort((a, b) => a - b);
}

function rowOf(rows: SupportRow[], name: string): SupportRow {
  const r = rows.find((r) => r.name === name);
  ok(r, `no row for ${name}`);
  return r;
}

Deno.test("docs/SYSCALLS.md is up to date", async () => {
  const doc = await Deno.readTextFile(new URL("docs/SYSCALLS.md", ROOT));
  ok(
    doc === supportMarkdown(supportTable()),
    "docs/SYSCALLS.md is out of date: run `deno run -A tools/gen-support-table.ts`",
  );
});

Deno.test("GUEST_SYSCALLS names exactly the syscalls in main.c's local[] table", async () => {
  const c = await Deno.readTextFile(new URL("main.c", KERNEL));
  const body = c.match(/local\[NR_SYSCALLS\]\s*=\s*\{([^}]*)\}/);
  ok(body, "local[NR_SYSCALLS] = { ... } not found in main.c");
  const inC = [...body[1].matchAll(/\[(\d+)\]\s*=\s*sys_\w+\s*,/g)].map((m) => Number(m[1]));
  ok(inC.length > 0);
  deepStrictEqual(
    inC.sort((a, b) => a - b).map(syscallName),
    numbersOf(Object.keys(GUEST_SYSCALLS)).map(syscallName),
  );
});

Deno.test("GUEST_FORWARDS names exactly the syscalls the guest kernel passes to the host", async () => {
  const forwarded: number[] = [];
  for await (const e of Deno.readDir(KERNEL)) {
    if (!e.isFile || !e.name.endsWith(".c")) continue;
    const c = await Deno.readTextFile(new URL(e.name, KERNEL));
    for (const m of c.matchAll(/hostcall\(\s*HC_SYSCALL\s*,\s*(\d+)\s*,/g)) {
      forwarded.push(Number(m[1]));
    }
  }
  deepStrictEqual(
    [...new Set(forwarded)].sort((a, b) => a - b).map(syscallName),
    numbersOf(GUEST_FORWARDS).map(syscallName),
  );
  for (const n of GUEST_FORWARDS) ok(n in GUEST_SYSCALLS, `${n} is forwarded but not guest-served`);
});

Deno.test("partial notes name handlers of their own module", () => {
  for (const m of DEFAULT_MODULES) {
    for (const [name, note] of Object.entries(m.partial ?? {})) {
      ok(Object.hasOwn(m.handlers, name), `${m.name}.partial.${name} has no handler`);
      ok(note.trim() !== "", `${m.name}.partial.${name} is empty`);
    }
  }
});

Deno.test("support table: spot checks", () => {
  const rows = supportTable();
  equal(rows.length, SYSCALL_NAMES.filter((n) => n).length);
  const write = rowOf(rows, "write");
  equal(write.where, "host");
  equal(write.module, "stdio");
  ok(write.status === "supported" || write.status === "partial");
  deepStrictEqual(rowOf(rows, "brk"), {
    nr: 12,
    name: "brk",
    status: "supported",
    where: "guest",
  });
  equal(rowOf(rows, "mmap").where, "guest+host");
  equal(rowOf(rows, "mmap").status, "partial");
  deepStrictEqual(rowOf(rows, "add_key"), {
    nr: 248,
    name: "add_key",
    status: "unsupported",
    where: "-",
  });
  equal(rowOf(rows, "readlink").status, "supported");
  equal(rowOf(rows, "readlink").module, "fs");
  for (const r of rows) equal(r.status === "partial", r.note !== undefined, r.name);
});

Deno.test("support table: every host handler is served, every guest one too", () => {
  const registry = defaultRegistry();
  const rows = new Map(supportTable(registry).map((r) => [r.nr, r]));
  for (const nr of registry.numbers()) {
    const r = rows.get(nr);
    ok(r && r.status !== "unsupported", `${syscallName(nr)} has a handler but is unsupported`);
    ok(r.where !== "-");
  }
  for (const name of Object.keys(GUEST_SYSCALLS)) {
    const r = rows.get(SYSCALL_NUMBERS.get(name)!);
    ok(r && r.where.startsWith("guest"), `${name} is not guest-served`);
  }
});

Deno.test("support table: an override moves a guest syscall to the host", () => {
  const registry = defaultRegistry().override("getpid", () => 42);
  deepStrictEqual(rowOf(supportTable(registry), "getpid"), {
    nr: 39,
    name: "getpid",
    status: "supported",
    where: "host",
    module: "override",
  });
});

Deno.test("support table: the generated Markdown is as deno fmt leaves it", async () => {
  const text = supportMarkdown(supportTable());
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--config", new URL("deno.json", ROOT).pathname, "--ext", "md", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const r = await child.output();
  equal(r.code, 0, new TextDecoder().decode(r.stderr));
  // A note with Markdown syntax in it (e.g. `*`, `_x_`) would be rewritten here.
  equal(new TextDecoder().decode(r.stdout), text);
});
