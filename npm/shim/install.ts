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

/**
 * Node's `process.stdout` on a pipe puts the pipe in O_NONBLOCK, for every
 * process that shares it: a guest inheriting the fd would get EAGAIN once
 * the pipe is full, where natively (and under Deno) its write waits. The
 * streams are made blocking as they are created (libuv's
 * `uv_stream_set_blocking`: Node's writes to them complete synchronously, as
 * they do on a pipe anyway). stdin is left alone: Node reads it in its loop.
 */
function blockingStdio(): void {
  for (const name of ["stdout", "stderr"] as const) {
    const d = Object.getOwnPropertyDescriptor(process, name);
    if (!d?.get || !d.configurable) continue;
    const get = d.get;
    let done = false;
    Object.defineProperty(process, name, {
      configurable: true,
      enumerable: d.enumerable,
      get() {
        const stream = get.call(process);
        if (!done) {
          done = true;
          stream?._handle?.setBlocking?.(true);
        }
        return stream;
      },
    });
  }
}

if (!("Deno" in g)) {
  blockingStdio();
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
