/**
 * A fork's copy into memory that reads as zero, leaving out the source's
 * all-zero pages (copy.c, called through FFI).
 * @module
 */
import { COPY_CODE } from "./code.ts";
import { codePages } from "./mod.ts";

const DEF = { parameters: ["usize", "usize", "usize"], result: "usize" } as const;

let fn: Deno.UnsafeFnPointer<typeof DEF> | undefined;

/**
 * Copies the 4 KiB pages of host memory [src, src + len) that are not all
 * zero to `dst`, which must read as zero (`len` a multiple of 4 KiB);
 * returns the bytes written.
 */
export function copyNonzero(dst: bigint, src: bigint, len: number): number {
  fn ??= new Deno.UnsafeFnPointer(codePages(COPY_CODE) as Deno.PointerObject<typeof DEF>, DEF);
  return Number(fn.call(dst, src, BigInt(len)));
}
