/**
 * Resource limits, as the guest sees them (getrlimit, setrlimit, prlimit64)
 * and as the host enforces them. They start as the host process's, each
 * granted one (`--max-fds`, `--max-threads`, `--cpu-time`,
 * `--max-file-size`; {@linkcode LimitOptions}) capped by its grant; a guest
 * may lower them and raise them again up to the grant, never past it (not
 * even as root). Enforced here, whatever the guest set:
 *
 * - RLIMIT_NOFILE: a new fd at or past the soft limit is EMFILE (the fd
 *   table's `limit`; dup2 and F_DUPFD answer as Linux);
 * - RLIMIT_NPROC: a clone (thread or process) when the run has that many
 *   threads alive, all processes together, is EAGAIN;
 * - RLIMIT_CPU: past the soft limit SIGXCPU (then every second while the
 *   soft limit is below the hard one), past the hard limit SIGKILL; the
 *   time counted is the hermitux process's CPU time since the guest process
 *   began (see SECURITY.md);
 * - RLIMIT_FSIZE: a write or truncate of a regular file past it is cut
 *   short, or EFBIG with SIGXFSZ when nothing fits, as Linux does.
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { bufferAddress, HOST_NR, hostClockNs, hostFstat, hostSyscall } from "./host.ts";
import type { Process } from "./registry.ts";
import { monotonicNs, SI, signalsOf } from "./signal.ts";
import type { OpenFile } from "./fdtable.ts";
import { grantsOf } from "./grants.ts";

/** Linux's rlimit resource numbers used here. */
export const RLIMIT = { CPU: 0, FSIZE: 1, NPROC: 6, NOFILE: 7 } as const;
/** The number of rlimit resources. */
export const RLIM_NLIMITS = 16;
/** "No limit". */
export const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

/** Default `maxFds`: Linux's usual soft RLIMIT_NOFILE. */
export const DEFAULT_MAX_FDS = 1024;
/** Default `maxThreads`: threads alive at once in a run, all processes together. */
export const DEFAULT_MAX_THREADS = 1024;

/** The limits a run is granted (BootOptions fields of the same names). */
export interface LimitOptions {
  /** RLIMIT_NOFILE (default 1024). */
  maxFds?: number;
  /** RLIMIT_NPROC: threads alive at once in the run (default 1024). */
  maxThreads?: number;
  /** RLIMIT_CPU in seconds: SIGXCPU then, SIGKILL a second later (default: none). */
  cpuTime?: number;
  /** RLIMIT_FSIZE in bytes (default: none). */
  maxFileSize?: number;
}

/** Per granted resource: its hard ceiling and where the soft limit starts. */
export type LimitGrants = ReadonlyMap<number, { soft: bigint; hard: bigint }>;

/** The grants for `o`; RangeError for a value that is not a positive integer. */
export function limitGrants(o: LimitOptions): LimitGrants {
  const m = new Map<number, { soft: bigint; hard: bigint }>();
  const count = (name: string, v: number | undefined, min: number): bigint | undefined => {
    if (v === undefined) return undefined;
    if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`bad ${name} ${v}`);
    return BigInt(v);
  };
  const fds = count("maxFds", o.maxFds, 3) ?? BigInt(DEFAULT_MAX_FDS);
  m.set(RLIMIT.NOFILE, { soft: fds, hard: fds });
  const threads = count("maxThreads", o.maxThreads, 1) ?? BigInt(DEFAULT_MAX_THREADS);
  m.set(RLIMIT.NPROC, { soft: threads, hard: threads });
  const cpu = count("cpuTime", o.cpuTime, 1);
  if (cpu !== undefined) m.set(RLIMIT.CPU, { soft: cpu, hard: cpu + 1n });
  const fsize = count("maxFileSize", o.maxFileSize, 0);
  if (fsize !== undefined) m.set(RLIMIT.FSIZE, { soft: fsize, hard: fsize });
  return m;
}

/** A process's limits: `values` is soft, hard per resource; replaced, never changed in place. */
interface Rlimits {
  /** The process they belong to (a forked child gets its own copy). */
  readonly pid: number;
  /** The host process's CPU time (ns) when the process began: RLIMIT_CPU counts from here. */
  readonly cpuStart: bigint;
  readonly values: BigUint64Array;
}

const KEY = "rlimits";
const CLOCK_PROCESS_CPUTIME_ID = 2;
const SIGKILL = 9, SIGXCPU = 24, SIGXFSZ = 25;
const NSEC = 1_000_000_000n;

let hostValues: BigUint64Array | undefined;

/** The host process's own limits (read once). */
function hostLimits(): BigUint64Array {
  if (!hostValues) {
    hostValues = new BigUint64Array(RLIM_NLIMITS * 2).fill(RLIM_INFINITY);
    for (let r = 0; r < RLIM_NLIMITS; r++) {
      const one = new Uint8Array(16);
      if (hostSyscall(HOST_NR.prlimit64, 0, r, 0, bufferAddress(one)) === 0n) {
        hostValues.set(new BigUint64Array(one.buffer), r * 2);
      }
    }
  }
  return hostValues;
}

/** The CPU time of this (host) process, ns. */
export function hostCpuNs(): bigint {
  return hostClockNs(CLOCK_PROCESS_CPUTIME_ID);
}

/** The limits in force for `p` (soft, hard per resource). */
export function rlimitsOf(p: Process): Rlimits {
  const r = p.state.get(KEY) as Rlimits | undefined;
  if (r && r.pid === p.pid) return r;
  let values: BigUint64Array;
  if (r) values = r.values.slice(); // a forked child: the parent's, its own from now
  else {
    values = hostLimits().slice();
    for (const [res, g] of grantsOf(p).limits) {
      values[res * 2] = min(values[res * 2], g.soft);
      values[res * 2 + 1] = min(values[res * 2 + 1], g.hard);
      if (values[res * 2] > values[res * 2 + 1]) values[res * 2] = values[res * 2 + 1];
    }
  }
  const next: Rlimits = { pid: p.pid, cpuStart: hostCpuNs(), values };
  p.state.set(KEY, next);
  return next;
}

const min = (a: bigint, b: bigint) => a < b ? a : b;

/** The soft limit of resource `r` for `p`. */
export function softLimit(p: Process, r: number): bigint {
  return rlimitsOf(p).values[r * 2];
}

/**
 * setrlimit's work: soft above hard is EINVAL; a hard limit above the
 * current one needs root (EPERM), and never passes a grant.
 */
export function setRlimit(p: Process, r: number, soft: bigint, hard: bigint): void {
  const l = rlimitsOf(p);
  if (soft > hard) throw new SyscallError(E.EINVAL);
  const ceiling = grantsOf(p).limits.get(r)?.hard;
  if (ceiling !== undefined && hard > ceiling) throw new SyscallError(E.EPERM);
  if (hard > l.values[r * 2 + 1] && Deno.uid() !== 0) throw new SyscallError(E.EPERM);
  const values = l.values.slice();
  values[r * 2] = soft;
  values[r * 2 + 1] = hard;
  p.state.set(KEY, { ...l, values });
  applyLimits(p);
}

/** What follows from the limits in force: the fd table's limit, the CPU clock's next look. */
function applyLimits(p: Process): void {
  p.fds.limit = Number(min(softLimit(p, RLIMIT.NOFILE), 0x7fffffffn));
  const w = cpuWatches.get(p);
  if (!w) return;
  const l = rlimitsOf(p).values;
  const limited = l[RLIMIT.CPU * 2] !== RLIM_INFINITY || l[RLIMIT.CPU * 2 + 1] !== RLIM_INFINITY;
  w.next = limited ? monotonicNs() : NEVER;
  if (limited) signalsOf(p).armHost(undefined, true);
}

const cpuWatches = new WeakMap<Process, { next: bigint }>();
/** No look needed (signal.ts's MAX_NS). */
const NEVER = (1n << 63n) - 1n;

/**
 * Starts the limits of a process that begins (boot, fork, execve): its own
 * record (a forked child's CPU time counts from now; an execve keeps it),
 * the fd table's limit, and the watch on its CPU time.
 */
export function startLimits(p: Process): void {
  rlimitsOf(p);
  const sig = signalsOf(p);
  const watch = { next: NEVER };
  cpuWatches.set(p, watch);
  // The host process may use every host CPU at once: what is left of the
  // limit cannot run out sooner than that; looked at again then.
  const cpus = BigInt(Math.max(1, navigator.hardwareConcurrency));
  const check = (now: bigint) => {
    const l = rlimitsOf(p), soft = l.values[RLIMIT.CPU * 2], hard = l.values[RLIMIT.CPU * 2 + 1];
    if (soft === RLIM_INFINITY && hard === RLIM_INFINITY) {
      watch.next = NEVER;
      return;
    }
    const used = hostCpuNs() - l.cpuStart;
    if (hard !== RLIM_INFINITY && used >= hard * NSEC) {
      p.exit(0, SIGKILL);
      watch.next = NEVER;
      return;
    }
    let limit = hard;
    if (soft !== RLIM_INFINITY && used >= soft * NSEC) {
      sig.raise({ signo: SIGXCPU, code: SI.KERNEL, pid: 0, uid: 0 });
      // Linux raises the soft limit a second at a time: SIGXCPU every second.
      if (soft < hard) {
        const values = l.values.slice();
        values[RLIMIT.CPU * 2] = soft + 1n;
        p.state.set(KEY, { ...l, values });
        limit = soft + 1n;
      }
    } else if (soft !== RLIM_INFINITY) limit = soft;
    const left = limit * NSEC - used;
    const wait = left / cpus;
    watch.next = now + (wait < 10_000_000n ? 10_000_000n : wait);
  };
  sig.watches.add({
    due: () => watch.next,
    fire: (now) => {
      if (sig.ended?.()) watch.next = NEVER;
      else check(now);
    },
  });
  applyLimits(p);
}

/**
 * RLIMIT_NPROC at a clone: EAGAIN when the run has `alive` threads (all its
 * processes) and that is the caller's soft limit.
 */
export function checkTasks(p: Process, alive: number): void {
  if (BigInt(alive) >= softLimit(p, RLIMIT.NPROC)) throw new SyscallError(E.EAGAIN);
}

const S_IFMT = 0o170000, S_IFREG = 0o100000;
const SEEK_CUR = 1, O_APPEND = 0o2000, F_GETFL = 3, NR_FCNTL = 72;

/** SIGXFSZ to `p` and EFBIG, as Linux answers a write or truncate past RLIMIT_FSIZE. */
function tooBig(p: Process): never {
  signalsOf(p).raise({ signo: SIGXFSZ, code: SI.USER, pid: p.pid, uid: Deno.uid() ?? 0 });
  throw new SyscallError(E.EFBIG);
}

/**
 * How much of a `count`-byte write at `pos` (undefined: the file offset, or
 * the end with O_APPEND) to `file` RLIMIT_FSIZE lets through: all of it
 * for what is not a regular file or with no limit; EFBIG (and SIGXFSZ)
 * when the write starts at or past the limit.
 */
export function fileSizeAllows(
  p: Process,
  file: OpenFile,
  pos: bigint | undefined,
  count: bigint,
): bigint {
  const limit = softLimit(p, RLIMIT.FSIZE);
  if (limit === RLIM_INFINITY || count === 0n) return count;
  const st = hostFstat(file.hostFd);
  if (typeof st === "number" || (st.mode & S_IFMT) !== S_IFREG) return count;
  if (pos === undefined || pos < 0n) {
    const fl = hostSyscall(NR_FCNTL, file.hostFd, F_GETFL);
    pos = fl >= 0n && (fl & BigInt(O_APPEND)) !== 0n
      ? BigInt(st.size)
      : hostSyscall(HOST_NR.lseek, file.hostFd, 0, SEEK_CUR);
    if (pos < 0n) return count;
  }
  if (pos >= limit) tooBig(p);
  return min(count, limit - pos);
}

/**
 * truncate/ftruncate/fallocate of host fd `fd` to `size`: EFBIG (and
 * SIGXFSZ) when it grows a regular file past RLIMIT_FSIZE.
 */
export function checkFileSize(p: Process, fd: number, size: bigint): void {
  const limit = softLimit(p, RLIMIT.FSIZE);
  if (limit === RLIM_INFINITY || size <= limit) return;
  const st = hostFstat(fd);
  if (typeof st === "number" || (st.mode & S_IFMT) !== S_IFREG) return;
  if (size > BigInt(st.size)) tooBig(p);
}
