/**
 * The libc functions hermitux calls through Deno's FFI, opened once.
 *
 * Raw host addresses travel as `bigint` (`u64`), which keeps V8 on its fast
 * FFI path; errno is read on the calling thread right after a failure.
 * @module
 */

const symbols = {
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  /** close on a worker thread: for fds whose last close waits in the kernel. */
  close_bg: { name: "close", parameters: ["i32"], result: "i32", nonblocking: true },
  ioctl: { parameters: ["i32", "u32", "pointer"], result: "i32" },
  ioctl_u64: { name: "ioctl", parameters: ["i32", "u32", "u64"], result: "i32" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  madvise: { parameters: ["u64", "usize", "i32"], result: "i32" },
  /** madvise on a worker thread: for prefaulting memory off the caller's path. */
  madvise_bg: {
    name: "madvise",
    parameters: ["u64", "usize", "i32"],
    result: "i32",
    nonblocking: true,
  },
  mincore: { parameters: ["u64", "usize", "buffer"], result: "i32" },
  mprotect: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  read: { parameters: ["i32", "u64", "usize"], result: "isize" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  write: { parameters: ["i32", "u64", "usize"], result: "isize" },
  readv: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  writev: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  syscall: {
    parameters: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"],
    result: "i64",
  },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  pthread_create: { parameters: ["buffer", "pointer", "pointer", "pointer"], result: "i32" },
  pthread_detach: { parameters: ["u64"], result: "i32" },
  uname: { parameters: ["buffer"], result: "i32" },
  setitimer: { parameters: ["i32", "buffer", "pointer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

let lib: Deno.DynamicLibrary<typeof symbols> | undefined;

/** The libc symbols, loaded on first use (dlopen costs ~1 ms). */
export function libc(): Deno.DynamicLibrary<typeof symbols>["symbols"] {
  lib ??= Deno.dlopen("libc.so.6", symbols);
  return lib.symbols;
}

/** errno of the last failed libc call on this thread. */
export function errno(): number {
  const p = libc().__errno_location();
  return new Deno.UnsafePointerView(p!).getInt32();
}

/** The C library's text for an errno value, e.g. "Permission denied". */
export function strerror(err: number): string {
  const p = libc().strerror(err);
  return p ? Deno.UnsafePointerView.getCString(p) : `errno ${err}`;
}

/** An OS error carrying errno, raised by the thin wrappers in this folder. */
export class OsError extends Error {
  /** The errno value. */
  readonly errno: number;
  /** @param what the call that failed, e.g. `"KVM_CREATE_VM"`. */
  constructor(what: string, err: number) {
    super(`${what}: ${strerror(err)} (errno ${err})`);
    this.errno = err;
  }
}

/** Throws an {@linkcode OsError} with errno when `ret` is negative. */
export function check(what: string, ret: number | bigint): number {
  if (ret < 0) throw new OsError(what, errno());
  return Number(ret);
}

/** Pointer ⇄ bigint address helpers. */
export function addressOf(p: Deno.PointerValue): bigint {
  return Deno.UnsafePointer.value(p);
}

/** Makes a pointer from a host address. */
export function pointerAt(addr: bigint): Deno.PointerValue {
  return Deno.UnsafePointer.create(addr);
}
