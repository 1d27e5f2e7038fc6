/**
 * Host syscalls for handlers that pass a call through after translating
 * fds and checking pointers: the raw kernel ABI, results as `-errno`.
 * @module
 */
import { errno, libc } from "../kvm/libc.ts";

/** Runs host syscall `nr`; returns its result or `-errno`. */
export function hostSyscall(
  nr: number,
  a0: bigint | number = 0n,
  a1: bigint | number = 0n,
  a2: bigint | number = 0n,
  a3: bigint | number = 0n,
  a4: bigint | number = 0n,
  a5: bigint | number = 0n,
): bigint {
  const r = libc().syscall(
    BigInt(nr),
    BigInt(a0),
    BigInt(a1),
    BigInt(a2),
    BigInt(a3),
    BigInt(a4),
    BigInt(a5),
  );
  return r === -1n ? BigInt(-errno()) : r;
}

/** What hermitux reads of a host `struct stat`. */
export interface HostStat {
  dev: bigint;
  ino: bigint;
  /** st_mode: type (S_IFMT bits) and permissions. */
  mode: number;
  size: number;
  /** st_mtim as ns. */
  mtimeNs: bigint;
}

/** fstat(2) of host fd `fd`, or `-errno`. */
export function hostFstat(fd: number): HostStat | number {
  const st = new BigUint64Array(18); // struct stat, 144 bytes
  const r = hostSyscall(5, fd, bufferAddress(new Uint8Array(st.buffer)));
  return r < 0n ? Number(r) : statOf(st);
}

/** The fields hermitux uses of a `struct stat` the host filled in. */
export function statOf(st: BigUint64Array): HostStat {
  return {
    dev: st[0],
    ino: st[1],
    mode: Number(st[3] & 0xffffffffn),
    size: Number(st[6]),
    mtimeNs: st[11] * 1_000_000_000n + st[12],
  };
}

/**
 * Buffers whose addresses were handed out. An address does not keep its
 * buffer alive: in `hostSyscall(nr, bufferAddress(pathToCString(p)))` the
 * buffer is garbage once its address is taken, and a collection before the
 * call (the address's own bigint is an allocation) may free its memory,
 * which the host kernel would then read. Kept here until the host call
 * being served is done ({@linkcode unpinBuffers}).
 */
const pinned: Uint8Array[] = [];
const MAX_PINNED = 4096;

/** Host address of a JS buffer, for syscalls that take a pointer; the buffer stays alive. */
export function bufferAddress(buf: Uint8Array): bigint {
  // Outside any host call (boot, the CLI) nothing unpins: drop the oldest.
  if (pinned.length === MAX_PINNED) pinned.splice(0, MAX_PINNED / 2);
  pinned.push(buf);
  return Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf));
}

/**
 * The timespec every clock reading shares, off V8's heap from the start (it
 * is over 64 bytes): a 16-byte buffer per reading became a C-heap block
 * that only a major collection freed, and boots back to back piled them up.
 */
const clockTs = new BigInt64Array(16);
const clockTsAddr = Deno.UnsafePointer.value(Deno.UnsafePointer.of(clockTs));

/** Host clock `clock` (a CLOCK_* id, or a thread's CPU clock) now, in ns; 0 if it fails. */
export function hostClockNs(clock: number | bigint): bigint {
  if (hostSyscall(228, clock, clockTsAddr) < 0n) return 0n; // clock_gettime
  return clockTs[0] * 1_000_000_000n + clockTs[1];
}

/** Lets the buffers {@linkcode bufferAddress} kept go: their calls are over. */
export function unpinBuffers(): void {
  pinned.length = 0;
}

/** Host syscall numbers used by handlers. */
export const HOST_NR = {
  read: 0,
  write: 1,
  fstat: 5,
  lseek: 8,
  ioctl: 16,
  readv: 19,
  writev: 20,
  sendfile: 40,
  preadv: 295,
  pwritev: 296,
  preadv2: 327,
  pwritev2: 328,
  prlimit64: 302,
} as const;
