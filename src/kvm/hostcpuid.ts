/**
 * The host's own `cpuid`, executed from a tiny stub of machine code: Deno has
 * no inline assembly, and /proc/cpuinfo names flags, not register bits.
 * @module
 */
import { libc } from "./libc.ts";

const PROT_READ = 1, PROT_EXEC = 4, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;

// cpuid(leaf = edi, subleaf = esi, out = rdx): out[0..3] = eax, ebx, ecx, edx.
const STUB = new Uint8Array([
  0x53, //             push rbx (callee-saved; cpuid writes it)
  0x49,
  0x89,
  0xd0, // mov r8, rdx
  0x89,
  0xf8, //       mov eax, edi
  0x89,
  0xf1, //       mov ecx, esi
  0x0f,
  0xa2, //       cpuid
  0x41,
  0x89,
  0x00, // mov [r8], eax
  0x41,
  0x89,
  0x58,
  0x04, // mov [r8 + 4], ebx
  0x41,
  0x89,
  0x48,
  0x08, // mov [r8 + 8], ecx
  0x41,
  0x89,
  0x50,
  0x0c, // mov [r8 + 12], edx
  0x5b, //             pop rbx
  0xc3, //             ret
]);

const SIGNATURE = { parameters: ["u32", "u32", "buffer"], result: "void" } as const;
let fn: Deno.UnsafeFnPointer<typeof SIGNATURE> | undefined;

/** The host CPU's CPUID leaf/subleaf as [eax, ebx, ecx, edx]. */
export function hostCpuid(leaf: number, subleaf = 0): Uint32Array {
  if (!fn) {
    const page = libc().mmap(null, 4096n, PROT_READ | 2, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n)!;
    new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(page, STUB.length)).set(STUB);
    libc().mprotect(page, 4096n, PROT_READ | PROT_EXEC);
    fn = new Deno.UnsafeFnPointer(page as Deno.PointerObject<typeof SIGNATURE>, SIGNATURE);
  }
  const out = new Uint32Array(4);
  fn.call(leaf, subleaf, out);
  return out;
}
