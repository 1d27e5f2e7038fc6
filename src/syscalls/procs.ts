/**
 * Processes: `fork`, `vfork`, `clone`/`clone3` of a new process, `execve`,
 * `execveat`, `wait4`, `waitid`, `kill` to other processes and groups,
 * process groups and sessions, and `close_range` (what a child does before
 * execve). The work is the process table's
 * (src/process/table.ts), reached through {@linkcode ProcessHost}; without
 * one (a registry used alone) the calls act as for a lone process.
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import {
  type Process,
  type SyscallCall,
  type SyscallModule,
  UnsupportedError,
} from "./registry.ts";
import { CLONE, type CloneSpec, type ThreadHost, threadModule, threadsOf } from "./thread.ts";
import type { SigInfo } from "./signal.ts";
import { signalModule } from "./sigcalls.ts";
import { pidfdTarget } from "./pidfd.ts";
import { hostSyscall } from "./host.ts";
import { attachGrants, type Grants } from "./grants.ts";
import { checkTasks, startLimits } from "./limits.ts";

/** Which children a wait looks at. */
export type WaitMatch = { kind: "any" } | { kind: "pid" | "pgid"; id: number };

/** What /proc shows of one guest process (src/syscalls/procfs.ts). */
export interface ProcInfo {
  /** Its pid. */
  readonly pid: number;
  /** Its parent's pid (1 once orphaned; the host's for the first process). */
  readonly ppid: number;
  /** Its process group. */
  readonly pgid: number;
  /** Its session. */
  readonly sid: number;
  /** Its image; for a zombie the one that ended, of which only its names are left. */
  readonly process: Process;
  /** Its wait status once it has ended: a zombie until its parent reaps it. */
  readonly status?: number;
  /** When it started (host CLOCK_BOOTTIME, ns); execve keeps it. */
  readonly started: bigint;
  /** Whether a thread of it waits for a vfork child to call execve or end. */
  readonly vforkWait: boolean;
  /** Whether it is stopped (job control). */
  readonly stopped: boolean;
}

/** What wait4/waitid wait for. */
export interface WaitOptions {
  /** Return 0 at once when no child matches yet (WNOHANG). */
  nohang: boolean;
  /** Leave the child reportable again (WNOWAIT). */
  keep: boolean;
  /** Report children that ended (WEXITED; wait4 always). */
  exited: boolean;
  /** Report children that stopped (WSTOPPED, WUNTRACED). */
  stopped: boolean;
  /** Report stopped children that continued (WCONTINUED). */
  continued: boolean;
}

/** What the process table does for one process's syscalls. */
export interface ProcessHost {
  /** The process's pid. */
  readonly pid: number;
  /** Starts a child process as fork(2) does (from the serving thread); its pid. */
  fork(spec: CloneSpec): number;
  /** Replaces the process's image; throws SyscallError (the caller goes on) when it cannot. */
  exec(path: string, argv: string[], envp: string[]): void;
  /**
   * Reports a child that matches and ended (or stopped, or continued, as
   * `opts` asks): `reply` writes what the caller asked for and gives the
   * result, now or once one does, the calling thread parked meanwhile;
   * -ECHILD, or 0 with `nohang` while none has.
   */
  wait(
    threads: ThreadHost,
    match: WaitMatch,
    opts: WaitOptions,
    reply: (pid: number, info: Uint8Array, status: number) => bigint,
  ): bigint;
  /** kill(2). */
  kill(pid: number, sig: number): number;
  /** setpgid(2). */
  setpgid(pid: number, pgid: number): number;
  /** getpgid(2). */
  getpgid(pid: number): number;
  /** getsid(2). */
  getsid(pid: number): number;
  /** setsid(2). */
  setsid(): number;
  /** Every guest process alive or a zombie, for /proc. */
  processes(): ProcInfo[];
  /**
   * Runs `onEnd` once process `pid` has ended (at once if it is a zombie);
   * the function returned stops that. ESRCH when there is no such process
   * (or it has been reaped). For pidfds.
   */
  watchEnd(pid: number, onEnd: () => void): () => void;
  /**
   * Sends `info` to process `pid` alone (pidfd_send_signal); `info.signo` 0
   * only checks that it exists. ESRCH once it has been reaped (a zombie
   * takes the signal and nothing happens), EINVAL for a bad signal.
   */
  signal(pid: number, info: SigInfo): number;
  /** Threads alive in the run, all processes together (RLIMIT_NPROC counts them). */
  tasks(): number;
  /** State the run's processes share (a terminal's foreground group: tty.ts), by key. */
  readonly shared: Map<string, unknown>;
  /** What the run was granted (network, limits). */
  readonly grants: Grants;
}

const KEY = "processes";

/** The process table's side for `p`, if it has one. */
export function processesOf(p: Process): ProcessHost | undefined {
  return p.state.get(KEY) as ProcessHost | undefined;
}

/**
 * Installs the process table's side for `p`, a process that begins (boot,
 * fork, execve), and starts its limits under the run's grants.
 */
export function attachProcesses(p: Process, host: ProcessHost): void {
  p.state.set(KEY, host);
  attachGrants(p, host.grants);
  startLimits(p);
}

const i32 = (v: bigint) => Number(BigInt.asIntN(32, v));
/** Namespaces: Linux refuses them without privileges we do not model. */
const NAMESPACES = 0x02000000n | 0x04000000n | 0x08000000n | 0x10000000n | 0x20000000n |
  0x40000000n | CLONE.NEWNS;
/** What a new process's clone may carry besides its exit signal. */
const PROCESS_MAY = CLONE.PARENT_SETTID | CLONE.CHILD_SETTID | CLONE.CHILD_CLEARTID |
  CLONE.SETTLS | CLONE.VFORK | CLONE.VM | CLONE.DETACHED | CLONE.UNTRACED | CLONE.IO |
  CLONE.SYSVSEM;
const WNOHANG = 1n, WSTOPPED = 2n, WEXITED = 4n, WCONTINUED = 8n, WNOWAIT = 0x1000000n;
const W_LINUX = 0x20000000n | 0x40000000n | 0x80000000n; // __WNOTHREAD, __WALL, __WCLONE
const P_ALL = 0, P_PID = 1, P_PGID = 2, P_PIDFD = 3;
const CLOSE_RANGE_UNSHARE = 2n, CLOSE_RANGE_CLOEXEC = 4n;
const AT_EMPTY_PATH = 0x1000, AT_SYMLINK_NOFOLLOW = 0x100, AT_FDCWD = -100;
/** Linux's limit on argv plus envp strings (MAX_ARG_STRINGS is larger; ARG_MAX is what bites). */
const ARG_MAX = 2 * 1024 * 1024;

const NR_GETPGID = 121, NR_GETSID = 124;
const LONE_PGID = "procs.pgid";

/**
 * A process without a table (a registry used alone) is in hermitux's own
 * group and session, as a native child inherits its parent's (both may be
 * 0 when their leader lives outside this pid namespace); setpgid changes
 * only its own view.
 */
const lone = {
  pgid(p: Process): number {
    const own = p.state.get(LONE_PGID);
    return own === undefined ? Number(hostSyscall(NR_GETPGID, 0)) : Number(own);
  },
  self(p: Process, pid: number): void {
    if (pid !== 0 && pid !== p.pid) throw new SyscallError(E.ESRCH);
  },
  setpgid(p: Process, pid: number, pgid: number): number {
    const who = pid || p.pid, group = pgid || who;
    if (group < 0) throw new SyscallError(E.EINVAL);
    if (who !== p.pid) throw new SyscallError(E.ESRCH);
    // A session leader cannot move; a group must be its own or the current one.
    if (Number(hostSyscall(NR_GETSID, 0)) === p.pid) throw new SyscallError(E.EPERM);
    if (group !== who && group !== lone.pgid(p)) throw new SyscallError(E.EPERM);
    p.state.set(LONE_PGID, group);
    return 0;
  },
};

function hostOf(p: Process): ProcessHost {
  const h = processesOf(p);
  if (!h) throw new SyscallError(E.ENOSYS);
  return h;
}

/** Before a thread's clone: RLIMIT_NPROC counts the run's threads. */
function newThread(p: Process): void {
  checkTasks(p, processesOf(p)?.tasks() ?? threadsOf(p)?.count ?? 1);
}

/** fork, vfork and clone/clone3 of a new process. */
function newProcess(p: Process, spec: CloneSpec, name: string): number {
  const f = spec.flags;
  if (f & NAMESPACES) {
    throw new UnsupportedError(`${name} with new namespaces (flags 0x${f.toString(16)})`, E.EPERM);
  }
  const shared = f & ~0xffn & ~PROCESS_MAY;
  // CLONE_VM without CLONE_VFORK shares memory with a running parent: not a copy.
  if (shared || ((f & CLONE.VM) && !(f & CLONE.VFORK))) {
    throw new UnsupportedError(`${name} of a process sharing state (flags 0x${f.toString(16)})`);
  }
  const host = hostOf(p);
  checkTasks(p, host.tasks());
  return host.fork(spec);
}

/** A NULL-terminated array of C strings (argv, envp); E2BIG past ARG_MAX. */
function strings(p: Process, addr: bigint): string[] {
  const out: string[] = [];
  if (addr === 0n) return out;
  let total = 0;
  for (let at = addr;; at += 8n) {
    const s = p.mem.u64(at);
    if (s === 0n) return out;
    const str = p.mem.cString(s, ARG_MAX);
    total += str.length + 9;
    if (total > ARG_MAX) throw new SyscallError(E.E2BIG);
    out.push(str);
  }
}

function exec(p: Process, path: string, argv: bigint, envp: bigint): number {
  const args = strings(p, argv), env = strings(p, envp);
  hostOf(p).exec(path, args, env);
  return 0;
}

function waitCall(
  p: Process,
  match: WaitMatch,
  opts: WaitOptions,
  reply: (pid: number, info: Uint8Array, status: number) => bigint,
): bigint {
  const h = processesOf(p), t = threadsOf(p);
  if (!h || !t) throw new SyscallError(E.ECHILD);
  return h.wait(t, match, opts, reply);
}

/** Process creation, images, waiting, and signals between processes. */
export const procsModule: SyscallModule = {
  name: "procs",
  partial: {
    vfork:
      "the child runs in its parent's memory (on its machine) until execve or _exit, or on a copy copied back for a run's first vfork or a multithreaded parent; no threads in it",
    clone: "threads, and new processes with exit signal, *_SETTID, CHILD_CLEARTID, SETTLS and " +
      "CLONE_VM|CLONE_VFORK (as vfork); namespaces EPERM; other sharing ENOSYS",
    clone3: "as clone; no set_tid, cgroup or pidfd",
    wait4: "rusage is zeroed",
    waitid: "P_ALL, P_PID, P_PGID and P_PIDFD; rusage is zeroed",
    execve: "no set-user-id or file capabilities",
    execveat: "dirfd AT_FDCWD or an fd opened by path; AT_EMPTY_PATH with such an fd",
  },
  handlers: {
    fork({ process: p }) {
      return newProcess(p, { flags: 17n, stack: 0n, parentTid: 0n, childTid: 0n, tls: 0n }, "fork");
    },
    vfork({ process: p }) {
      const flags = CLONE.VM | CLONE.VFORK | 17n;
      return newProcess(p, { flags, stack: 0n, parentTid: 0n, childTid: 0n, tls: 0n }, "vfork");
    },
    clone(call: SyscallCall) {
      const [flags, stack, parentTid, childTid, tls] = call.args;
      if (flags & CLONE.THREAD || (flags & CLONE.SIGHAND)) {
        newThread(call.process);
        return threadModule.handlers.clone(call);
      }
      return newProcess(call.process, { flags, stack, parentTid, childTid, tls }, "clone");
    },
    clone3(call: SyscallCall) {
      const { args: [argsAddr, size], process: p } = call;
      if (size < 64n || size > 4096n) throw new SyscallError(E.EINVAL);
      const flags = p.mem.u64(argsAddr);
      if (flags & CLONE.THREAD || (flags & CLONE.SIGHAND)) {
        newThread(p);
        return threadModule.handlers.clone3(call);
      }
      // struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal,
      // stack, stack_size, tls, set_tid, set_tid_size, cgroup.
      const words = Number(size < 88n ? size : 88n) / 8;
      const a: bigint[] = [];
      for (let i = 0; i < 11; i++) a.push(i < words ? p.mem.u64(argsAddr + BigInt(i * 8)) : 0n);
      const [, , childTid, parentTid, exitSignal, stack, stackSize, tls, setTid] = a;
      if (setTid !== 0n || (flags & CLONE.PIDFD) || exitSignal > 64n || (flags & 0xffn)) {
        throw new SyscallError(E.EINVAL);
      }
      if ((stack === 0n) !== (stackSize === 0n)) throw new SyscallError(E.EINVAL);
      const spec = {
        flags: flags | exitSignal,
        stack: stack + stackSize,
        parentTid,
        childTid,
        tls,
      };
      return newProcess(p, spec, "clone3");
    },
    execve({ args: [path, argv, envp], process: p }) {
      return exec(p, p.mem.cString(path), argv, envp);
    },
    execveat({ args: [dirfd, path, argv, envp, flags], process: p }) {
      const fl = Number(flags);
      if (fl & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) throw new SyscallError(E.EINVAL);
      let name = p.mem.cString(path);
      const fd = i32(dirfd);
      if (name === "" || !name.startsWith("/")) {
        if (name === "" && !(fl & AT_EMPTY_PATH)) throw new SyscallError(E.ENOENT);
        if (fd !== AT_FDCWD) {
          const dir = p.fds.get(fd).path;
          if (dir === undefined) throw new SyscallError(E.ENOENT);
          name = name === "" ? dir : `${dir}/${name}`;
        }
      }
      return exec(p, name, argv, envp);
    },
    wait4({ args: [pid, status, options, rusage], process: p }) {
      if (options & ~(WNOHANG | WSTOPPED | WCONTINUED | W_LINUX)) throw new SyscallError(E.EINVAL);
      const n = i32(pid), h = processesOf(p);
      const match: WaitMatch = n === -1
        ? { kind: "any" }
        : n > 0
        ? { kind: "pid", id: n }
        : { kind: "pgid", id: n === 0 ? (h?.getpgid(0) ?? 0) : -n };
      // Checked now, as Linux faults on them before it reaps anything.
      if (status) p.mem.check(status, 4);
      if (rusage) p.mem.check(rusage, 144);
      const opts: WaitOptions = {
        nohang: !!(options & WNOHANG),
        keep: false,
        exited: true,
        stopped: !!(options & WSTOPPED), // WUNTRACED
        continued: !!(options & WCONTINUED),
      };
      return waitCall(p, match, opts, (child, _, st) => {
        if (status) p.mem.view.setInt32(p.mem.check(status, 4), st, true);
        if (rusage) p.mem.slice(rusage, 144).fill(0);
        return BigInt(child);
      });
    },
    waitid({ args: [idtype, id, infop, opt, rusage], process: p }) {
      let options = opt, eagain = false;
      const valid = WNOHANG | WSTOPPED | WEXITED | WCONTINUED | WNOWAIT | W_LINUX;
      if (options & ~valid || !(options & (WEXITED | WSTOPPED | WCONTINUED))) {
        throw new SyscallError(E.EINVAL);
      }
      const type = i32(idtype), n = i32(id), h = processesOf(p);
      let match: WaitMatch;
      if (type === P_ALL) match = { kind: "any" };
      else if (type === P_PID && n > 0) match = { kind: "pid", id: n };
      else if (type === P_PGID && n >= 0) {
        match = { kind: "pgid", id: n === 0 ? (h?.getpgid(0) ?? 0) : n };
      } else if (type === P_PIDFD) {
        const target = pidfdTarget(p, n);
        match = { kind: "pid", id: target.pid };
        // A non-blocking pidfd makes the wait WNOHANG, with EAGAIN for "none yet".
        if (target.nonblocking && !(options & WNOHANG)) {
          options |= WNOHANG;
          eagain = true;
        }
      } else throw new SyscallError(E.EINVAL);
      if (infop) p.mem.slice(infop, 128).fill(0, 0, 32);
      if (rusage) p.mem.check(rusage, 144);
      const opts: WaitOptions = {
        nohang: !!(options & WNOHANG),
        keep: !!(options & WNOWAIT),
        exited: !!(options & WEXITED),
        stopped: !!(options & WSTOPPED),
        continued: !!(options & WCONTINUED),
      };
      let reported = false;
      const r = waitCall(p, match, opts, (_, info) => {
        reported = true;
        if (infop) p.mem.slice(infop, 128).set(info);
        if (rusage) p.mem.slice(rusage, 144).fill(0);
        return 0n;
      });
      return eagain && r === 0n && !reported ? -E.EAGAIN : r;
    },
    kill(call: SyscallCall) {
      const h = processesOf(call.process);
      if (!h) return signalModule.handlers.kill(call);
      const [pid, sig] = call.args;
      return h.kill(i32(pid), i32(sig));
    },
    setpgid({ args: [pid, pgid], process: p }) {
      const h = processesOf(p);
      return h ? h.setpgid(i32(pid), i32(pgid)) : lone.setpgid(p, i32(pid), i32(pgid));
    },
    getpgid({ args: [pid], process: p }) {
      const h = processesOf(p);
      if (h) return h.getpgid(i32(pid));
      lone.self(p, i32(pid));
      return lone.pgid(p);
    },
    getpgrp({ process: p }) {
      return processesOf(p)?.getpgid(0) ?? lone.pgid(p);
    },
    getsid({ args: [pid], process: p }) {
      const h = processesOf(p);
      if (h) return h.getsid(i32(pid));
      lone.self(p, i32(pid));
      return hostSyscall(NR_GETSID, 0);
    },
    setsid({ process: p }) {
      return hostOf(p).setsid();
    },
    close_range({ args: [first, last, flags], process: p }) {
      const lo = Number(BigInt.asUintN(32, first)), hi = Number(BigInt.asUintN(32, last));
      if (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) || lo > hi) {
        throw new SyscallError(E.EINVAL);
      }
      // Each process has its own table already: UNSHARE changes nothing.
      for (const [fd] of p.fds.entries()) {
        if (fd < lo || fd > hi) continue;
        if (flags & CLOSE_RANGE_CLOEXEC) p.fds.setCloexec(fd, true);
        else p.fds.close(fd);
      }
      return 0;
    },
  },
};
