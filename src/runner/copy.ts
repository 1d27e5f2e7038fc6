/**
 * A fork's copy into memory that reads as zero, leaving out the source's
 * all-zero pages (copy.c, called through FFI).
 * @module
 */
import { libc, OsError } from "../kvm/libc.ts";
import { COPY_CODE } from "./code.ts";

const PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;
const DEF = { parameters: ["usize", "usize", "usize"], result: "usize" } as const;

let fn: Deno.UnsafeFnPointer<typeof DEF> | undefined;

/**
 * Copies the 4 KiB pages of host memory [src, src + len) that are not all
 * zero to `dst`, which must read as zero (`len` a multiple of 4 KiB);
 * returns the bytes written.
 */
export function copyNonzero(dst: bigint, src: bigint, len: number): number {
  if (!fn) {
    const bytes = Uint8Array.from(atob(COPY_CODE), (c) => c.charCodeAt(0));
    const size = BigInt(Math.ceil(bytes.length / 4096) * 4096);
    const p = libc().mmap(null, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n);
    if (!p || Deno.UnsafePointer.value(p) === 0xffffffffffffffffn) throw new OsError("mmap", 12);
    new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, bytes.length)).set(bytes);
    libc().mprotect(p, size, PROT_READ | PROT_EXEC);
    fn = new Deno.UnsafeFnPointer(p as Deno.PointerObject<typeof DEF>, DEF);
  }
  return Number(fn.call(dst, src, BigInt(len)));
}
