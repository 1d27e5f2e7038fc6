// Shared by the benchmarks: build the C loops, open /dev/null for the guest.
import { compileC } from "../tests/fixtures.ts";
import { libc } from "../src/kvm/libc.ts";

/** Builds bench/c/NAME.c (statically with musl by default: the smallest start-up). */
export async function benchBinary(name: string, cc = "musl-gcc"): Promise<string> {
  const src = await Deno.readTextFile(new URL(`./c/${name}.c`, import.meta.url));
  return compileC(`bench-${name}-${cc}`, src, cc, cc === "musl-gcc" ? ["-static"] : []);
}

/** A host fd open on /dev/null, to hand to the guest as stdout. */
export function devNull(): number {
  return libc().open(new TextEncoder().encode("/dev/null\0"), 2 | 0x80000, 0);
}
