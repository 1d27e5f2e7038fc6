/**
 * Deno's FFI (`Deno.dlopen`, `UnsafePointer`, `UnsafePointerView`,
 * `UnsafeFnPointer`) on koffi, for Node: the subset hermitux uses, with
 * Deno's value conventions (64-bit results as `bigint`, pointers as opaque
 * objects or `null`, `nonblocking` symbols returning promises).
 *
 * A pointer is koffi's own pointer value (an `External`), so it passes
 * straight back into koffi calls; `bigint` addresses go through
 * {@linkcode UnsafePointer.create} and {@linkcode UnsafePointer.value}.
 * Views of native memory are koffi's external `ArrayBuffer`s: they alias the
 * memory (guest RAM, `struct kvm_run`), with no copy.
 * @module
 */
import koffi from "koffi";

/** A Deno FFI type name (the subset hermitux declares). */
type NativeType =
  | "void"
  | "bool"
  | "u8"
  | "i8"
  | "u16"
  | "i16"
  | "u32"
  | "i32"
  | "u64"
  | "i64"
  | "usize"
  | "isize"
  | "f32"
  | "f64"
  | "pointer"
  | "buffer"
  | "function";

/** One symbol's definition, as `Deno.dlopen` takes it. */
export interface ForeignFunction {
  /** The symbol's name in the library, when the key differs. */
  name?: string;
  /** Parameter types. */
  parameters: readonly NativeType[];
  /** Result type. */
  result: NativeType;
  /** Call on a worker thread; the call returns a promise. */
  nonblocking?: boolean;
}

/** A pointer: koffi's pointer value, or null for NULL. */
export type PointerValue = object | null;

const KOFFI: Record<NativeType, string> = {
  void: "void",
  bool: "bool",
  u8: "uint8_t",
  i8: "int8_t",
  u16: "uint16_t",
  i16: "int16_t",
  u32: "uint32_t",
  i32: "int32_t",
  u64: "uint64_t",
  i64: "int64_t",
  usize: "uint64_t",
  isize: "int64_t",
  f32: "float",
  f64: "double",
  pointer: "void *",
  buffer: "void *",
  function: "void *",
};

/** Deno returns these as `bigint`; koffi gives a number when it fits. */
const BIG = new Set<NativeType>(["u64", "i64", "usize", "isize"]);

const libraries = new Map<string, koffi.IKoffiLib>();

function library(path: string): koffi.IKoffiLib {
  let lib = libraries.get(path);
  if (!lib) libraries.set(path, lib = koffi.load(path));
  return lib;
}

type Fn = (...args: unknown[]) => unknown;

/** Wraps koffi function `f` to return Deno's values (and a promise when `nonblocking`). */
function adapt(f: koffi.KoffiFunction, def: ForeignFunction): Fn {
  const big = BIG.has(def.result);
  if (def.nonblocking) {
    return (...args) =>
      new Promise((resolve, reject) => {
        f.async(...args, (err: unknown, r: unknown) => {
          if (err) reject(err);
          else resolve(big ? BigInt(r as number) : r);
        });
      });
  }
  return big ? (...args) => BigInt(f(...args) as number) : f as Fn;
}

let protos = 0;

/** A koffi prototype for a Deno definition. */
function proto(def: ForeignFunction): koffi.IKoffiCType {
  return koffi.proto(
    `hermitux_fn${protos++}`,
    KOFFI[def.result],
    def.parameters.map((t) => KOFFI[t]),
  );
}

/** `Deno.DynamicLibrary`: the bound symbols of one library. */
export class DynamicLibrary {
  /** The functions, by the keys of the definitions. */
  readonly symbols: Record<string, Fn> = {};

  /** Opens `path` (dlopen: once per path) and binds `defs`. */
  constructor(path: string, defs: Record<string, ForeignFunction>) {
    const lib = library(path);
    for (const [key, def] of Object.entries(defs)) {
      const f = lib.func(def.name ?? key, KOFFI[def.result], def.parameters.map((t) => KOFFI[t]));
      this.symbols[key] = adapt(f, def);
    }
  }

  /** Nothing to do: koffi keeps the library (dlopen'd once per path) loaded. */
  close(): void {}
}

/** `Deno.dlopen`. */
export function dlopen(path: string, defs: Record<string, ForeignFunction>): DynamicLibrary {
  return new DynamicLibrary(path, defs);
}

// `void *memmove(void *dst, void *src, size_t n)` returns dst: with n = 0 it
// turns a buffer (passed by address, no copy) or an address into a pointer.
let identity: koffi.KoffiFunction | undefined;
const scratch = new BigUint64Array(1);

/** `Deno.UnsafePointer`: pointers to and from addresses and buffers. */
export const UnsafePointer = {
  /** The pointer at address `addr` (null for 0). */
  create(addr: bigint): PointerValue {
    if (addr === 0n) return null;
    scratch[0] = addr;
    return koffi.decode(scratch, "void *") as PointerValue;
  },
  /** The address of pointer `p` (0 for null). */
  value(p: PointerValue): bigint {
    return p === null ? 0n : koffi.address(p);
  },
  /** A pointer to the bytes of a buffer (its memory, not a copy). */
  of(buf: ArrayBufferView | ArrayBuffer): PointerValue {
    identity ??= library("libc.so.6").func("memmove", "void *", ["void *", "void *", "size_t"]);
    const view = buf instanceof ArrayBuffer ? new Uint8Array(buf) : buf;
    return identity(view, null, 0) as PointerValue;
  },
  /** Whether two pointers hold the same address. */
  equals(a: PointerValue, b: PointerValue): boolean {
    return UnsafePointer.value(a) === UnsafePointer.value(b);
  },
  /** `p` moved by `offset` bytes. */
  offset(p: PointerValue, offset: number | bigint): PointerValue {
    return UnsafePointer.create(UnsafePointer.value(p) + BigInt(offset));
  },
};

/** `Deno.UnsafePointerView`: reads at a pointer. */
export class UnsafePointerView {
  /** @param pointer where the reads start. */
  constructor(readonly pointer: PointerValue) {}

  /** An `ArrayBuffer` over `len` bytes at `p + offset`: the memory itself, not a copy. */
  static getArrayBuffer(p: PointerValue, len: number, offset = 0): ArrayBuffer {
    if (len === 0) return new ArrayBuffer(0);
    const at = offset ? UnsafePointer.offset(p, offset) : p;
    return koffi.view(at, len);
  }

  /** The NUL-terminated UTF-8 string at `p + offset`. */
  static getCString(p: PointerValue, offset = 0): string {
    return koffi.decode(p, offset, "char", -1) as string;
  }

  /** A copy of `len` bytes at `p + offset`. */
  static copyInto(p: PointerValue, dest: Uint8Array, offset = 0): void {
    dest.set(new Uint8Array(UnsafePointerView.getArrayBuffer(p, dest.length, offset)));
  }

  #view(offset: number, len: number): DataView {
    return new DataView(UnsafePointerView.getArrayBuffer(this.pointer, len, offset));
  }

  /** The signed 32-bit value at `offset`. */
  getInt32(offset = 0): number {
    return this.#view(offset, 4).getInt32(0, true);
  }

  /** The unsigned 32-bit value at `offset`. */
  getUint32(offset = 0): number {
    return this.#view(offset, 4).getUint32(0, true);
  }

  /** The unsigned 8-bit value at `offset`. */
  getUint8(offset = 0): number {
    return this.#view(offset, 1).getUint8(0);
  }

  /** The unsigned 64-bit value at `offset`. */
  getBigUint64(offset = 0): bigint {
    return this.#view(offset, 8).getBigUint64(0, true);
  }

  /** The NUL-terminated string at `offset`. */
  getCString(offset = 0): string {
    return UnsafePointerView.getCString(this.pointer, offset);
  }
}

/** `Deno.UnsafeFnPointer`: machine code at a pointer, called with a signature. */
export class UnsafeFnPointer {
  /** Calls the function. */
  readonly call: Fn;

  /** @param pointer the function's address; @param definition its signature. */
  constructor(readonly pointer: PointerValue, readonly definition: ForeignFunction) {
    const f = koffi.decode(pointer, proto(definition)) as koffi.KoffiFunction;
    this.call = adapt(f, definition);
  }
}
