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
  sigaction: { parameters: ["i32", "buffer", "pointer"], result: "i32" },
  dlsym: { parameters: ["pointer", "buffer"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

type Symbols = Deno.DynamicLibrary<typeof symbols>["symbols"];
type Name = keyof typeof symbols;

/**
 * What nearly every VM calls: bound together at the first call. Each
 * symbol costs ~0.1 ms to bind (its fast-call trampoline is compiled), so
 * the rest are bound one by one at their first call.
 */
const FIRST: Name[] = [
  "open",
  "close",
  "ioctl",
  "ioctl_u64",
  "mmap",
  "munmap",
  "madvise",
  "syscall",
  "__errno_location",
  "mprotect",
  "uname",
  "clock_gettime",
  "pread",
];

/** The libraries opened so far (kept: their symbols die with them). */
const opened: Deno.DynamicLibrary<Partial<typeof symbols>>[] = [];
let table: Symbols | undefined;

/** Binds `names` (one dlopen) into `t`, in place of their stubs. */
function bind(t: Record<string, unknown>, names: Name[]): void {
  const lib = Deno.dlopen("libc.so.6", Object.fromEntries(names.map((n) => [n, symbols[n]])));
  opened.push(lib as Deno.DynamicLibrary<Partial<typeof symbols>>);
  for (const n of names) t[n] = lib.symbols[n as keyof typeof lib.symbols];
}

/**
 * The libc symbols, bound on first use: a start-up that binds all 26 at once
 * spends ~3 ms in dlopen. Each property starts as a stub that binds the real
 * function in its place (same object, same property: call sites stay monomorphic).
 */
export function libc(): Symbols {
  if (table) return table;
  const t: Record<string, unknown> = {};
  for (const n of Object.keys(symbols) as Name[]) {
    t[n] = (...args: unknown[]) => {
      bind(t, [n]);
      return (t[n] as (...a: unknown[]) => unknown)(...args);
    };
  }
  bind(t, FIRST);
  return table = t as Symbols;
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
