/**
 * How much of the guest kernel's code a specialized VM can still run: the
 * call graph of kernel.bin, from its symbol map (kernel.map, `nm -n`) and
 * the direct calls and jumps iced-x86 finds in each function, walked from
 * the code every run needs (boot, the syscall and exception entries,
 * dispatch, host calls) and the handlers of the guest-kernel syscalls in
 * the allowed set. Handlers are reached only through main.c's `local[]`
 * table, which specialization bypasses for every syscall outside the set.
 * @module
 */
import { ABI } from "../kernel/abi.ts";
import { Disassembly } from "./disasm.ts";

/** Functions every run can execute, whatever the allowed set. */
const CORE = [
  "_start",
  "kmain",
  "syscall_entry",
  "syscall_common",
  "syscall_return",
  "zpoline_entry",
  "stub_entry",
  "sig_enter_save",
  "sig_enter",
  "sig_return",
  "sig_resume",
  "exception_stubs",
  "ksyscall",
  "hostcall",
];

/** Handlers `local[]` shares between syscalls (main.c). */
const SHARED: Readonly<Record<string, string>> = { geteuid: "sys_getuid", getegid: "sys_getgid" };

/** The C function that serves guest-kernel syscall `name` (its entry in main.c's `local[]`). */
export function kernelHandler(name: string): string {
  return SHARED[name] ?? `sys_${name}`;
}

/** Bytes of guest-kernel code reachable, of all its code, and the functions reached. */
export interface KernelReach {
  reachable: number;
  total: number;
  functions: string[];
}

/**
 * The guest-kernel code reachable when only `syscalls` (names) of those it
 * serves can be dispatched to it. `image` is kernel.bin (loaded at
 * KERNEL_ADDR) and `map` its kernel.map.
 */
export function kernelReach(
  image: Uint8Array,
  map: string,
  syscalls: Iterable<string>,
): KernelReach {
  const end = ABI.KERNEL_ADDR + image.length;
  const syms = map.split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((p) => p.length === 3)
    .map(([a, type, name]) => ({ addr: parseInt(a, 16), type, name }))
    .filter((s) => s.addr >= ABI.KERNEL_ADDR && s.addr < end)
    .sort((a, b) => a.addr - b.addr);
  // Each function runs to the next symbol of any kind (or the image's end).
  const funcs: { name: string; start: number; end: number }[] = [];
  syms.forEach((s, i) => {
    // The image header (entry.S) is data that happens to sit in .text.
    if ((s.type !== "T" && s.type !== "t") || s.name === "header") return;
    const next = syms.slice(i + 1).find((n) => n.addr > s.addr)?.addr ?? end;
    funcs.push({ name: s.name, start: s.addr, end: next });
  });
  const byName = new Map(funcs.map((f) => [f.name, f]));
  const containing = (addr: number) => funcs.find((f) => addr >= f.start && addr < f.end);
  const seen = new Set<string>();
  const work = [...CORE, ...[...syscalls].map(kernelHandler)].filter((n) => byName.has(n));
  while (work.length) {
    const name = work.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const f = byName.get(name)!;
    const bytes = image.subarray(f.start - ABI.KERNEL_ADDR, f.end - ABI.KERNEL_ADDR);
    const d = new Disassembly([{ addr: f.start, bytes }]);
    for (const target of d.targets.values()) {
      const g = containing(target);
      if (g && !seen.has(g.name)) work.push(g.name);
    }
  }
  const size = (f: { start: number; end: number }) => f.end - f.start;
  return {
    reachable: funcs.filter((f) => seen.has(f.name)).reduce((a, f) => a + size(f), 0),
    total: funcs.reduce((a, f) => a + size(f), 0),
    functions: [...seen].sort(),
  };
}
