/**
 * FIFOs: `mknod`/`mknodat` (a FIFO, a regular file or a socket node made on
 * the host through the mount; device nodes refused with EPERM, as for an
 * unprivileged process: a device node in a mount would reach the host's
 * devices), and opening a FIFO with Linux's blocking rules.
 *
 * Why opens need care: open(2) of a FIFO for reading blocks until a writer
 * opens it, and for writing until a reader does. Done on the host, that
 * would hold the one host thread that serves every vCPU (and the process
 * that would open the other end may be a guest of this very host process).
 * So a blocking open is made on the host with O_NONBLOCK (a reader's then
 * succeeds at once, a writer's fails with ENXIO while no reader is there),
 * and the wait for the other end is hermitux's: the main thread waits
 * serving the other threads, any other thread parks, as blocking reads do,
 * and a signal ends the wait (ERESTARTSYS). Guest opens of each FIFO are
 * counted here (all guest processes live in this host process), so an
 * open wakes the other end's waiters at once; ends opened by host
 * processes are found by looking again every few ms. Once open, a FIFO is
 * a host pipe: reads and writes block as on any pipe.
 * @module
 */
import { clipOverlays, fileId } from "../vm/shared.ts";
import { E, SyscallError } from "./errno.ts";
import {
  bufferAddress,
  hostFstat,
  type HostStat,
  hostSyscall,
  statOf as hostStat,
} from "./host.ts";
import type { Process, SyscallCall, SyscallModule } from "./registry.ts";
import { inParent, pathArg, resolveAt, withGuestUmask } from "./fs.ts";
import { monotonicNs, pollFd, signalsOf } from "./signal.ts";
import { ERESTARTSYS } from "./stdio.ts";
import { threadsOf, WouldBlock } from "./thread.ts";
import { openBeneath, OutsideMounts, type Resolved } from "../vfs/mounts.ts";
import { OpenFile } from "./fdtable.ts";
import { forgetHint } from "../loader/relro.ts";

const NR = { close: 3, fcntl: 72, newfstatat: 262, mknodat: 259 } as const;
const O_ACCMODE = 3, O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_NONBLOCK = 0o4000;
const O_PATH = 0o10000000, O_CREAT = 0o100, O_TRUNC = 0o1000;
const F_SETFL = 4;
const O_APPEND = 0o2000, O_DIRECT = 0o40000, O_NOATIME = 0o1000000;
const S_IFMT = 0o170000, S_IFIFO = 0o010000, S_IFCHR = 0o020000, S_IFDIR = 0o040000;
const S_IFBLK = 0o060000, S_IFREG = 0o100000, S_IFSOCK = 0o140000;
const AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100;
const POLLIN = 1, POLLHUP = 0x10;
/** How often a waiting open looks again for an end opened outside the guest. */
const RECHECK_NS = 10_000_000n;

/** The guest's open ends of one FIFO (those waiting in open included). */
interface Ends {
  readers: number;
  writers: number;
  /** Waiting opens, told when the other end comes. */
  waiters: Set<() => void>;
}

/** Every FIFO the guests have open, by host device and inode. */
const fifos = new Map<string, Ends>();

function endsOf(st: HostStat): { key: string; ends: Ends } {
  const key = `${st.dev}:${st.ino}`;
  let ends = fifos.get(key);
  if (!ends) fifos.set(key, ends = { readers: 0, writers: 0, waiters: new Set() });
  return { key, ends };
}

/** Counts one more end of FIFO `key` and wakes the waiting opens; the undo. */
function addEnd(key: string, ends: Ends, read: boolean, write: boolean): () => void {
  if (read) ends.readers++;
  if (write) ends.writers++;
  for (const w of [...ends.waiters]) w();
  let done = false;
  return () => {
    if (done) return;
    done = true;
    if (read) ends.readers--;
    if (write) ends.writers--;
    if (!ends.readers && !ends.writers && !ends.waiters.size) fifos.delete(key);
  };
}

/** How to open the file on the host and install it as a guest fd. */
interface OpenSteps {
  /** Opens it on the host with `how` (open flags); a host fd or throws. */
  open(how: number): number;
  /** Installs a host fd as a guest fd (`cleanup` runs when it closes); the guest fd. */
  install(hostFd: number, cleanup?: () => void): number;
}

/** stat of resolved path `r` (a final symlink followed, as open does), or -errno. */
function statOf(r: Resolved): HostStat | number {
  const st = new BigUint64Array(18);
  const ret = inParent(
    r,
    false,
    (dir, name) =>
      hostSyscall(
        NR.newfstatat,
        dir,
        bufferAddress(name),
        bufferAddress(new Uint8Array(st.buffer)),
        0,
      ),
  );
  return ret < 0n ? Number(ret) : hostStat(st);
}

/**
 * open(2)'s last step for resolved path `r` (on a mount), which may be a
 * FIFO: opens it below the mount with host open flags `how` (`mode` and
 * the guest's umask if it creates a file) and installs it, with Linux's
 * blocking rules for a FIFO (see the module's notes). Returns the guest fd,
 * or 0 when the calling thread was parked (its call returns the fd, or an
 * error, later).
 */
export function openMayBlock(
  p: Process,
  r: Resolved,
  how: number,
  mode: number,
  cloexec: boolean,
): number {
  const root = r.mount!.rootFd;
  const steps: OpenSteps = {
    // Only a call that may create a file needs the umask swapped (two host calls).
    open: (how) =>
      how & O_CREAT
        ? withGuestUmask(p, (umask) => openBeneath(root, r.rel, how, mode & ~umask & 0o7777))
        : openBeneath(root, r.rel, how),
    install(hostFd, cleanup) {
      // Truncated: shared mappings of the file give back their pages (src/vm/shared.ts).
      if (how & O_TRUNC) {
        const id = fileId(hostFd);
        if (id) clipOverlays(id, 0);
      }
      const fd = p.fds.install(new OpenFile(hostFd, { path: r.guest, cleanup }), cloexec);
      forgetHint(p.mem, fd);
      return fd;
    },
  };
  const acc = how & O_ACCMODE;
  if (how & (O_NONBLOCK | O_PATH) || acc === O_RDWR) {
    const fd = steps.open(how);
    // A non-blocking reader or writer is an end a blocked open waits for.
    if (acc === O_RDWR || how & O_PATH) return steps.install(fd);
    const st = hostFstat(fd);
    if (typeof st === "number" || (st.mode & S_IFMT) !== S_IFIFO) return steps.install(fd);
    const { key, ends } = endsOf(st);
    return steps.install(fd, addEnd(key, ends, acc === O_RDONLY, acc === O_WRONLY));
  }
  let fd: number;
  try {
    fd = steps.open(how | O_NONBLOCK);
  } catch (e) {
    // ENXIO: a FIFO with no reader yet (or a socket or device: ENXIO as it is).
    if (!(e instanceof SyscallError) || e.errno !== E.ENXIO || acc !== O_WRONLY) throw e;
    const st = statOf(r);
    if (typeof st === "number" || (st.mode & S_IFMT) !== S_IFIFO) throw e;
    const { key, ends } = endsOf(st);
    return waitForEnd(p, key, ends, false, how, () => {
      try {
        return steps.open(how | O_NONBLOCK);
      } catch (e) {
        if (e instanceof SyscallError && e.errno === E.ENXIO) return undefined;
        throw e;
      }
    }, steps);
  }
  const st = hostFstat(fd);
  if (typeof st === "number" || (st.mode & S_IFMT) !== S_IFIFO) {
    blocking(fd, how);
    return steps.install(fd);
  }
  const { key, ends } = endsOf(st);
  if (acc === O_RDONLY) {
    // A reader's host fd is open already: writers may open now.
    const ready = () => ends.writers > 0 || pollFd(fd, POLLIN, 0n) > 0n;
    return waitForEnd(p, key, ends, true, how, () => ready() ? fd : undefined, steps, fd);
  }
  // A writer that found a reader at once.
  blocking(fd, how);
  return steps.install(fd, addEnd(key, ends, false, true));
}

/**
 * Clears the O_NONBLOCK the host open of `how` was given: F_SETFL sets
 * every flag it can change, so the others `how` had are given again.
 */
function blocking(fd: number, how: number): void {
  hostSyscall(NR.fcntl, fd, F_SETFL, how & (O_APPEND | O_DIRECT | O_NOATIME));
}

/**
 * A FIFO end that waits in open for the other one: counted as an end (as
 * Linux counts it before it sleeps), then `attempt` is tried whenever the
 * other end may have come: a host fd when it has, else undefined.
 * `held`: the reader's host fd, open meanwhile (closed if the wait ends
 * without success).
 */
function waitForEnd(
  p: Process,
  key: string,
  ends: Ends,
  read: boolean,
  how: number,
  attempt: () => number | undefined,
  steps: OpenSteps,
  held?: number,
): number {
  const drop = addEnd(key, ends, read, !read);
  const done = (fd: number) => {
    blocking(fd, how);
    return steps.install(fd, drop);
  };
  const fail = () => {
    if (held !== undefined) hostSyscall(NR.close, held);
    drop();
  };
  let fd = attempt();
  if (fd !== undefined) return done(fd);
  const t = threadsOf(p);
  if (t && !t.onMain) {
    const tid = t.current;
    /** Looks once: true when the wait is over (the thread resumed). */
    const look = () => {
      let fd: number | undefined;
      try {
        fd = attempt();
      } catch (e) {
        if (!(e instanceof SyscallError)) throw e;
        fail();
        t.resume(tid, BigInt(-e.errno));
        return true;
      }
      if (fd === undefined) return false;
      t.resume(tid, BigInt(done(fd)));
      return true;
    };
    // Told by the other end's open (from whichever thread or process made
    // it): resumes this thread if it can, and never parks it again.
    const waiter = () => {
      if (look()) ends.waiters.delete(waiter);
    };
    const check = () => {
      if (look()) ends.waiters.delete(waiter);
      else t.park(monotonicNs() + RECHECK_NS, check, interrupt, watch);
    };
    const interrupt = () => {
      ends.waiters.delete(waiter);
      fail();
      t.resume(tid, BigInt(-ERESTARTSYS));
    };
    const watch = new Uint8Array(held === undefined ? 0 : 8);
    if (held !== undefined) {
      const wv = new DataView(watch.buffer);
      wv.setInt32(0, held, true);
      wv.setInt16(4, POLLIN | POLLHUP, true);
    }
    try {
      t.park(monotonicNs() + RECHECK_NS, check, interrupt, watch);
    } catch (e) {
      if (e instanceof WouldBlock) fail(); // made again by the doorbell, from the start
      throw e;
    }
    ends.waiters.add(waiter);
    return 0; // parked: resume gives the fd
  }
  const s = signalsOf(p);
  for (;;) {
    const r = s.sleep(1, monotonicNs() + RECHECK_NS, () => (fd = attempt()) !== undefined);
    if (fd !== undefined) return done(fd);
    if (r === "signal" || r === "timeout") {
      fail();
      throw new SyscallError(ERESTARTSYS);
    }
  }
}

/** mknodat's work, in Linux's order: the type, the path, then privileges. */
function mknod(p: Process, dirfd: bigint, pathAddr: bigint, modeArg: bigint, devArg: bigint) {
  const mode = Number(BigInt.asUintN(32, modeArg)), dev = Number(BigInt.asUintN(32, devArg));
  const type = mode & S_IFMT;
  if (type === S_IFDIR) throw new SyscallError(E.EPERM);
  const device = type === S_IFCHR || type === S_IFBLK;
  const known = type === 0 || type === S_IFREG || type === S_IFIFO || type === S_IFSOCK;
  if (!device && !known) throw new SyscallError(E.EINVAL);
  let r: Resolved;
  try {
    r = resolveAt(p, dirfd, pathArg(p, pathAddr), false);
  } catch (e) {
    throw e instanceof OutsideMounts ? new SyscallError(E.EROFS) : e;
  }
  const exists = r.mount && inParent(r, false, (dir, name) => {
        const st = new Uint8Array(144);
        return hostSyscall(
          NR.newfstatat,
          dir,
          bufferAddress(name),
          bufferAddress(st),
          AT_SYMLINK_NOFOLLOW,
        );
      }) === 0n;
  if (exists) throw new SyscallError(E.EEXIST);
  // A whiteout (a character device 0:0) needs no privilege; any other device does.
  if (device && !(type === S_IFCHR && dev === 0)) {
    inParent(r, true, () => 0n); // EROFS first, as Linux
    throw new SyscallError(E.EPERM);
  }
  return withGuestUmask(p, (umask) =>
    inParent(r, true, (dir, name) =>
      hostSyscall(
        NR.mknodat,
        dir,
        bufferAddress(name),
        type | (mode & 0o7777 & ~umask),
        device ? 0 : dev,
      )));
}

/** mknod and mknodat. */
export const fifoModule: SyscallModule = {
  name: "fifo",
  partial: {
    mknodat: "FIFOs, regular files, sockets and whiteouts; other devices EPERM (as unprivileged)",
    mknod: "as mknodat",
  },
  handlers: {
    mknod: ({ args: [path, mode, dev], process: p }: SyscallCall) =>
      mknod(p, BigInt(AT_FDCWD), path, mode, dev),
    mknodat: ({ args: [dirfd, path, mode, dev], process: p }: SyscallCall) =>
      mknod(p, dirfd, path, mode, dev),
  },
};
