/**
 * The plain-call fast path of the exitless transport (src/runner/plain.c):
 * the poller's inner loop runs in C and serves read, write, their vector
 * and positioned forms, lseek, fstat, recvfrom and sendto (no address),
 * and epoll_wait/epoll_pwait that find events ready, on plain host fds,
 * with no JavaScript per call. This side tells it which
 * vCPUs to look at, which guest fds are plain (a host fd with no file ops
 * of hermitux's own) and which calls still have their built-in handler;
 * it counts what C served in the run's stats, and serves whatever C hands
 * back, as before.
 * @module
 */
import { ABI, HOSTCALL } from "../kernel/abi.ts";
import { libc, OsError } from "../kvm/libc.ts";
import { noteRead } from "../loader/relro.ts";
import { PLAIN_CODE } from "../runner/code.ts";
import { codePages } from "../runner/mod.ts";
import type { SyscallRegistry } from "../syscalls/registry.ts";
import { stdioModule } from "../syscalls/stdio.ts";
import { fsModule } from "../syscalls/fs.ts";
import { netModule } from "../net/sockets.ts";
import { pollModule } from "../syscalls/poll.ts";
import { softLimit } from "../syscalls/limits.ts";
import type { FdTable } from "../syscalls/fdtable.ts";
import { physOf } from "./percpu.ts";
import type { Guest } from "./guest.ts";

/** Byte offsets in `struct plain` (plain.c). */
export const PLAIN = {
  mem: 0,
  userMin: 8,
  userEnd: 16,
  door: 24,
  doorSeen: 32,
  spin: 36,
  calls: 40,
  fsize: 44,
  noteCpu: 48,
  ncpu: 52,
  counts: 56,
  block: 184,
  fds: 696,
  maxCpus: 64,
  maxFds: 1024,
  size: 696 + 4096,
} as const;

/** The calls C serves, in its CALL_* order, by syscall name. */
const CALLS = [
  ["read", 0],
  ["write", 1],
  ["pread64", 17],
  ["pwrite64", 18],
  ["readv", 19],
  ["writev", 20],
  ["lseek", 8],
  ["fstat", 5],
  ["recvfrom", 45],
  ["sendto", 44],
  ["epoll_wait", 232],
  ["epoll_pwait", 281],
] as const;

/** serve()'s result bits (plain.c). */
const SERVED_MASK = 0xffff, BACK_TS = 1 << 16, BACK_DOOR = 1 << 17, BACK_NOTE = 1 << 18;
const FD_READ_WAITS = 1, FD_WRITE_WAITS = 2;
const RLIMIT_FSIZE = 1, RLIM_INFINITY = 0xffffffffffffffffn;
/** How long C spins with nothing to serve before it comes back (µs). */
const SPIN_US = 50;
/** Calls C serves before it comes back, so timers and the poll window stay on time. */
const MAX_SERVED = 256;

const PROT_READ = 1, PROT_WRITE = 2, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;

let serveFn: ((s: Deno.PointerValue, max: number) => number) | undefined;

/** plain.c's serve(), copied into an executable page once per host process. */
function serveFunction(): (s: Deno.PointerValue, max: number) => number {
  if (!serveFn) {
    const p = codePages(PLAIN_CODE);
    const def = { parameters: ["pointer", "u32"], result: "u32" } as const;
    const fn = new Deno.UnsafeFnPointer(p as Deno.PointerObject<typeof def>, def);
    serveFn = (s, max) => fn.call(s, max);
  }
  return serveFn;
}

/**
 * The handlers whose work C does, as the modules had them when this module
 * loaded: a registry (or a patched module) serving one of these calls with
 * anything else keeps it in TypeScript.
 */
const BUILT_IN: ReadonlyMap<number, unknown> = new Map(
  CALLS.map(([name, nr]) => {
    const m = name === "pread64" || name === "pwrite64"
      ? fsModule
      : name === "recvfrom" || name === "sendto"
      ? netModule
      : name === "epoll_wait" || name === "epoll_pwait"
      ? pollModule
      : stdioModule;
    return [nr, m.handlers[name]];
  }),
);

/** Which of C's calls `registry` still serves with hermitux's own handler. */
function callMask(registry: SyscallRegistry): number {
  let mask = 0;
  CALLS.forEach(([, nr], i) => {
    const h = registry.handler(nr);
    if (h && h === BUILT_IN.get(nr) && !registry.isOverridden(nr)) mask |= 1 << i;
  });
  return mask;
}

/** One guest process's `struct plain` and its bookkeeping. */
export class PlainServer {
  readonly #page: Deno.PointerObject;
  readonly #view: DataView;
  readonly #fds: Int32Array;
  readonly #counts: BigUint64Array;
  #table?: FdTable;
  #version = -1;
  #calls: number;

  /**
   * @param spinUs how long serve() spins with nothing to do before it
   *   returns: 0 for one look (the process table's loop, which looks at
   *   several processes in turn)
   */
  constructor(readonly guest: Guest, spinUs: number = SPIN_US) {
    const size = BigInt(Math.ceil(PLAIN.size / 4096) * 4096);
    const p = libc().mmap(null, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n);
    if (!p || Deno.UnsafePointer.value(p) === 0xffffffffffffffffn) throw new OsError("mmap", 12);
    this.#page = p;
    const buf = Deno.UnsafePointerView.getArrayBuffer(p, Number(size));
    this.#view = new DataView(buf);
    this.#fds = new Int32Array(buf, PLAIN.fds, PLAIN.maxFds);
    this.#counts = new BigUint64Array(buf, PLAIN.counts, CALLS.length);
    const v = this.#view, mem = guest.mem!;
    v.setBigUint64(PLAIN.mem, mem.host, true);
    v.setBigUint64(PLAIN.userMin, BigInt(ABI.USER_MIN), true);
    v.setBigUint64(PLAIN.door, guest.threads!.doorAddress, true);
    // The machine's, read when it was made: vCPU 0 may be running now (a
    // vCPU ioctl would have to wait for its runner).
    const khz = guest.machine?.tscKhz || 2_000_000;
    v.setUint32(PLAIN.spin, Math.min(0xffffffff, Math.round(khz * spinUs / 1000)), true);
    this.#calls = guest.trace ? 0 : callMask(guest.registry);
    serveFunction();
  }

  /**
   * Serves plain calls in C until one needs TypeScript, a runner exits, or
   * it has been idle a while. `door`: the door count this side has seen.
   * Returns the calls served and whether TypeScript has work (`back`),
   * having finished any read C handed back.
   */
  serve(door: number): { served: number; back: boolean } {
    const g = this.guest, v = this.#view, mem = g.mem!, p = g.process!;
    if (!this.#calls || g.trace) return { served: 0, back: true };
    this.#syncFds(p.fds);
    v.setBigUint64(PLAIN.userEnd, BigInt(mem.userEnd), true);
    v.setUint32(PLAIN.doorSeen, door, true);
    v.setUint32(PLAIN.calls, this.#calls, true);
    v.setUint32(PLAIN.fsize, softLimit(p, RLIMIT_FSIZE) === RLIM_INFINITY ? 0 : 1, true);
    const cpus = g.threads!.cpus;
    const n = Math.min(cpus.length, PLAIN.maxCpus);
    for (let i = 0; i < n; i++) {
      const c = cpus[i];
      const ok = c.alive && !c.busy && !c.parked;
      const hc = c.hc ??= physOf(mem, c.id, ABI.HOSTCALL_ADDR);
      v.setBigUint64(PLAIN.block + i * 8, ok ? mem.host + BigInt(hc) : 0n, true);
    }
    v.setUint32(PLAIN.ncpu, n, true);
    const r = serveFunction()(this.#page, MAX_SERVED);
    const served = r & SERVED_MASK;
    if (served) this.#account(served);
    if (r & BACK_NOTE) this.#finishRead(cpus[v.getUint32(PLAIN.noteCpu, true)]);
    return { served, back: (r & (BACK_TS | BACK_DOOR)) !== 0 };
  }

  /** Frees the struct. */
  dispose(): void {
    libc().munmap(this.#page, BigInt(Math.ceil(PLAIN.size / 4096) * 4096));
  }

  /** Folds C's counts into the run's stats. */
  #account(served: number): void {
    const s = this.guest.stats;
    for (let i = 0; i < CALLS.length; i++) {
      const k = Number(this.#counts[i]);
      if (!k) continue;
      this.#counts[i] = 0n;
      const name = CALLS[i][0];
      s.syscalls[name] = (s.syscalls[name] ?? 0) + k;
    }
    s.hostCalls += served;
    s.exitless += served;
    s.plainCalls += served;
  }

  /** A read C made that may be ld.so reading a library's headers: noted, then acked. */
  #finishRead(cpu: { id: number; hc?: number } | undefined): void {
    const g = this.guest, mem = g.mem!, v = mem.view;
    if (!cpu) return;
    const hc = cpu.hc ??= physOf(mem, cpu.id, ABI.HOSTCALL_ADDR);
    const fd = Number(v.getBigUint64(hc + HOSTCALL.arg, true));
    const buf = Number(v.getBigUint64(hc + HOSTCALL.arg + 8, true));
    const r = Number(v.getBigInt64(hc + HOSTCALL.ret, true));
    const entry = this.#fds[fd];
    if (entry >= 0) {
      try {
        mem.check(buf, r);
        noteRead(mem, fd, entry >> 2, buf, r);
      } catch { /* the guest changed its block: no note */ }
    }
    v.setUint32(hc + HOSTCALL.ack, v.getUint32(hc + HOSTCALL.seq, true), true);
  }

  /** Rewrites the fd table C reads when the process's fds changed. */
  #syncFds(t: FdTable): void {
    if (t === this.#table && t.version === this.#version) return;
    this.#table = t;
    this.#version = t.version;
    this.#fds.fill(-1);
    for (const [fd, file] of t.entries()) {
      if (fd >= PLAIN.maxFds || file.ops || file.hostFd < 0) continue;
      const bits = (file.neverBlocks ? 0 : FD_READ_WAITS) | (file.canBlock ? FD_WRITE_WAITS : 0);
      this.#fds[fd] = file.hostFd * 4 + bits;
    }
  }
}
