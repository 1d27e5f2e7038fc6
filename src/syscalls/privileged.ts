/**
 * Calls that need a privilege the guest is never given, answered as Linux
 * answers them, in Linux's order of checks: setting the clock
 * (`clock_settime`, `settimeofday`) and changing the root (`chroot`).
 *
 * Why refused even for a guest that holds the capability (it runs as the
 * host user, root here): the host's clock is the host's, and a guest's
 * root is its mount table, which the host chooses (`--mount`,
 * `BootOptions.mounts`): a root of its own inside it would be a second
 * namespace to resolve every path in. So `chroot("/")` (or any path that
 * is the guest's root) succeeds and changes nothing; another directory is
 * EPERM, as for a process without CAP_SYS_CHROOT, and is named once on
 * stderr when the guest holds the capability (Linux would have done it).
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { bufferAddress, hostSyscall } from "./host.ts";
import { type Process, type SyscallModule, UnsupportedError } from "./registry.ts";
import { capable } from "./process.ts";
import { inParent, pathArg } from "./fs.ts";
import { cpuClock } from "./cputime.ts";

const CAP_SYS_CHROOT = 18, CAP_SYS_TIME = 25;
const CLOCK_REALTIME = 0;
const NSEC = 1_000_000_000n;
/** Linux's TIME_SETTOD_SEC_MAX: KTIME_SEC_MAX less 30 years of uptime. */
const SETTOD_SEC_MAX = 9223372036n - 30n * 31536000n;
const S_IFMT = 0o170000, S_IFDIR = 0o040000;
const NR = { newfstatat: 262, faccessat2: 439 } as const;

const i32 = (v: bigint) => Number(BigInt.asIntN(32, v));

/** Linux's do_sys_settimeofday64 check for a time to set (ns), then the capability. */
function setTime(p: Process, sec: bigint | undefined, nsec: bigint): never {
  if (sec !== undefined && (sec < 0n || sec >= SETTOD_SEC_MAX || nsec < 0n || nsec >= NSEC)) {
    throw new SyscallError(E.EINVAL);
  }
  if (capable(p, CAP_SYS_TIME)) throw new UnsupportedError("setting the host's clock", E.EPERM);
  throw new SyscallError(E.EPERM);
}

/** clock_settime, settimeofday and chroot. */
export const privilegedModule: SyscallModule = {
  name: "privileged",
  partial: {
    clock_settime: "never sets the clock: EPERM (after Linux's EINVAL and EFAULT checks)",
    settimeofday: "as clock_settime",
    chroot: "the guest's root only (changes nothing); another directory EPERM",
  },
  handlers: {
    clock_settime({ args: [clock, tp], process: p }) {
      const id = i32(clock);
      // Only REALTIME and the clock ids of a pid or tid have a setter (the
      // latter refuse every time); PROCESS/THREAD_CPUTIME_ID have none.
      const cpu = id < 0 && (id & 3) !== 3;
      if (id !== CLOCK_REALTIME && !cpu) throw new SyscallError(E.EINVAL);
      const o = p.mem.check(tp, 16);
      const sec = p.mem.view.getBigInt64(o, true), nsec = p.mem.view.getBigInt64(o + 8, true);
      if (cpu) throw new SyscallError(cpuClock(p, id) ? E.EPERM : E.EINVAL);
      return setTime(p, sec, nsec);
    },
    settimeofday({ args: [tv, tz], process: p }) {
      let sec: bigint | undefined, usec = 0n;
      if (tv) {
        const o = p.mem.check(tv, 16);
        sec = p.mem.view.getBigInt64(o, true);
        usec = p.mem.view.getBigInt64(o + 8, true);
        if (usec > 1_000_000n || usec < 0n) throw new SyscallError(E.EINVAL);
      }
      if (tz) p.mem.check(tz, 8);
      return setTime(p, sec, usec * 1000n);
    },
    chroot({ args: [path], process: p }) {
      const r = p.mounts.resolve(pathArg(p, path), p.cwd);
      if (r.mount) {
        const st = new Uint8Array(144);
        const ret = inParent(
          r,
          false,
          (dir, name) => hostSyscall(NR.newfstatat, dir, bufferAddress(name), bufferAddress(st), 0),
        );
        if (ret < 0n) return ret;
        const mode = new DataView(st.buffer).getUint32(24, true);
        if ((mode & S_IFMT) !== S_IFDIR) throw new SyscallError(E.ENOTDIR);
        const x = inParent(
          r,
          false,
          (dir, name) => hostSyscall(NR.faccessat2, dir, bufferAddress(name), 1, 0),
        );
        if (x < 0n) return x;
      }
      if (!capable(p, CAP_SYS_CHROOT)) throw new SyscallError(E.EPERM);
      if (r.guest === "/") return 0;
      throw new UnsupportedError("chroot to a directory other than /", E.EPERM);
    },
  },
};
