/**
 * pidfds: `pidfd_open` and `pidfd_send_signal` (and `waitid(P_PIDFD)`,
 * served by procs.ts with {@linkcode pidfdTarget}).
 *
 * Why a host eventfd behind each: a guest process is not a host process
 * (they are all VMs in this one), so no host pidfd can stand for one. A
 * pidfd is a host eventfd that the process table makes readable when the
 * process ends, which is what poll, select and epoll on a pidfd report;
 * read and write on it are EINVAL, as on Linux.
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { type FileOps, OpenFile } from "./fdtable.ts";
import { bufferAddress, hostSyscall } from "./host.ts";
import { type Process, type SyscallModule, UnsupportedError } from "./registry.ts";
import { SI, type SigInfo, signalsOf } from "./signal.ts";
import { processesOf } from "./procs.ts";
import { threadsOf } from "./thread.ts";

const NR = { write: 1, fcntl: 72, eventfd2: 290 } as const;
const PIDFD_NONBLOCK = 0o4000, PIDFD_THREAD = 0o200, O_CLOEXEC = 0o2000000;
const F_GETFL = 3;
/** pidfd_send_signal's scopes. */
const SIGNAL_THREAD = 1, SIGNAL_THREAD_GROUP = 2, SIGNAL_PROCESS_GROUP = 4;

/** A pidfd: the process it names. */
class PidFd implements FileOps {
  constructor(readonly pid: number) {}
  read(): number {
    throw new SyscallError(E.EINVAL);
  }
  write(): number {
    throw new SyscallError(E.EINVAL);
  }
}

const i32 = (v: bigint) => Number(BigInt.asIntN(32, v));

/** The process guest fd `fd` is a pidfd of, and whether it is non-blocking; EBADF if none. */
export function pidfdTarget(p: Process, fd: number): { pid: number; nonblocking: boolean } {
  const file = p.fds.get(fd);
  if (!(file.ops instanceof PidFd)) throw new SyscallError(E.EBADF);
  const fl = hostSyscall(NR.fcntl, file.hostFd, F_GETFL);
  return { pid: file.ops.pid, nonblocking: fl >= 0n && (fl & BigInt(PIDFD_NONBLOCK)) !== 0n };
}

function pidfdOpen(p: Process, pid: number, flags: number): number {
  if (flags & ~(PIDFD_NONBLOCK | PIDFD_THREAD) || pid <= 0) throw new SyscallError(E.EINVAL);
  if (pid !== p.pid && threadsOf(p)?.has(pid)) {
    // A thread that leads no process: only PIDFD_THREAD names one.
    if (!(flags & PIDFD_THREAD)) throw new SyscallError(E.EINVAL);
    throw new UnsupportedError("pidfd_open of a thread (PIDFD_THREAD)");
  }
  const host = processesOf(p);
  if (!host && pid !== p.pid) throw new SyscallError(E.ESRCH);
  const efd = hostSyscall(NR.eventfd2, 0, (flags & PIDFD_NONBLOCK) | O_CLOEXEC);
  if (efd < 0n) throw new SyscallError(Number(-efd));
  const fd = Number(efd);
  let stop = () => {};
  try {
    stop = host?.watchEnd(pid, () => {
      const one = new BigUint64Array([1n]);
      hostSyscall(NR.write, fd, bufferAddress(new Uint8Array(one.buffer)), 8);
    }) ?? stop;
  } catch (e) {
    hostSyscall(3, fd);
    throw e;
  }
  // A pidfd is always close-on-exec.
  return p.fds.install(new OpenFile(fd, { ops: new PidFd(pid), cleanup: stop }), true);
}

function pidfdSendSignal(p: Process, fd: number, sig: number, infoAddr: bigint, flags: number) {
  // At most one scope: the thread, the process (the default) or its group.
  if (flags & ~(SIGNAL_THREAD | SIGNAL_THREAD_GROUP | SIGNAL_PROCESS_GROUP)) {
    throw new SyscallError(E.EINVAL);
  }
  if (flags & (flags - 1)) throw new SyscallError(E.EINVAL);
  const { pid } = pidfdTarget(p, fd);
  let info: SigInfo;
  if (infoAddr) {
    const raw = p.mem.slice(infoAddr, 128).slice(), v = new DataView(raw.buffer);
    if (v.getInt32(0, true) !== sig) throw new SyscallError(E.EINVAL);
    const code = v.getInt32(8, true);
    // Only a process itself may make up a kernel's or tkill's siginfo.
    const other = pid !== p.pid || flags & SIGNAL_PROCESS_GROUP;
    if (other && (code >= 0 || code === SI.TKILL)) throw new SyscallError(E.EPERM);
    info = { signo: sig, code, raw };
  } else {
    // Linux's prepare_kill_siginfo: SI_TKILL for a thread, else SI_USER.
    const code = flags & SIGNAL_THREAD ? SI.TKILL : SI.USER;
    info = { signo: sig, code, pid: p.pid, uid: Deno.uid() ?? 0 };
  }
  const host = processesOf(p);
  if (flags & SIGNAL_PROCESS_GROUP) {
    if (!host) throw new UnsupportedError("pidfd_send_signal to a process group");
    return host.kill(-host.getpgid(pid), sig);
  }
  if (flags & SIGNAL_THREAD && pid === p.pid && sig > 0 && sig <= 64) {
    // The main thread alone (another process's main thread: its process, below).
    signalsOf(p).raiseOn(pid, info);
    return 0;
  }
  if (host) return host.signal(pid, info);
  if (sig < 0 || sig > 64) throw new SyscallError(E.EINVAL);
  if (sig !== 0) signalsOf(p).raise(info);
  return 0;
}

/** pidfd_open and pidfd_send_signal. */
export const pidfdModule: SyscallModule = {
  name: "pidfd",
  partial: {
    pidfd_open: "processes (PIDFD_NONBLOCK); PIDFD_THREAD for a thread is ENOSYS; poll " +
      "shows POLLIN at the end, never POLLHUP",
    pidfd_send_signal: "PIDFD_SIGNAL_THREAD reaches another process's whole process",
  },
  handlers: {
    pidfd_open: ({ args: [pid, flags], process: p }) =>
      pidfdOpen(p, i32(pid), Number(BigInt.asUintN(32, flags))),
    pidfd_send_signal: ({ args: [fd, sig, info, flags], process: p }) =>
      pidfdSendSignal(p, i32(fd), i32(sig), info, Number(BigInt.asUintN(32, flags))),
  },
};
