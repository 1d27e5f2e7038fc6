/**
 * Installs the `Deno` namespace hermitux uses as `globalThis.Deno` on Node,
 * before the library's modules load (they are imported after this one): its
 * FFI on koffi (./ffi.ts), its runtime on Node's modules (./runtime.ts).
 * Also what Node 20 lacks of Deno's globals: `navigator.hardwareConcurrency`
 * and the `Symbol.dispose` pair, and a SIGALRM that cannot kill the process
 * before hermitux listens for it.
 * @module
 */
import * as os from "node:os";
// deno-lint-ignore no-process-global
const process = globalThis.process; // not node:process: see shim/runtime.ts
import * as ffi from "./ffi.ts";
import { runtime } from "./runtime.ts";

const g = globalThis as Record<string, unknown>;
const symbols = Symbol as unknown as Record<string, symbol>;
symbols.dispose ??= Symbol("Symbol.dispose");
symbols.asyncDispose ??= Symbol("Symbol.asyncDispose");
g.navigator ??= { hardwareConcurrency: os.availableParallelism() };

if (!("Deno" in g)) {
  g.Deno = {
    ...runtime,
    dlopen: ffi.dlopen,
    UnsafePointer: ffi.UnsafePointer,
    UnsafePointerView: ffi.UnsafePointerView,
    UnsafeFnPointer: ffi.UnsafeFnPointer,
  };
}

/** Whether the process runs on this shim rather than on Deno. */
export const onNode = typeof process.versions.node === "string" && !("deno" in process.versions);
