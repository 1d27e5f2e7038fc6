/**
 * The guest's file descriptor table. A guest fd names an open file
 * description backed by a host fd; `dup` shares the description (and so the
 * offset), as on Linux, and the host fd closes with its last guest fd.
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import { hostFstat, hostSyscall } from "./host.ts";
import type { Process } from "./registry.ts";

/** Guest buffers of a read or write: (guest address, length) pairs. */
export type GuestIovec = readonly (readonly [bigint, bigint])[];

/**
 * What a file hermitux makes itself (a signalfd, a pidfd) does instead of
 * the host fd's read and write; its host fd stays what poll, epoll, fcntl
 * and fstat see.
 */
export interface FileOps {
  /** read/readv into `iov`: the result, or -errno; 0 while its thread is parked. */
  read(p: Process, iov: GuestIovec): number | bigint;
  /** write/writev from `iov`, likewise. */
  write(p: Process, iov: GuestIovec): number | bigint;
}

/** An open file description as the guest sees it. */
export class OpenFile {
  /** The host fd that backs it. */
  readonly hostFd: number;
  /** Whether closing the last guest fd closes the host fd. */
  readonly owned: boolean;
  /** The guest path it was opened by (for *at syscalls and /proc), if any. */
  readonly path?: string;
  /** Its own read and write, for a file hermitux makes (see {@linkcode FileOps}). */
  readonly ops?: FileOps;
  #refs = 0;
  #canBlock?: boolean;

  #cleanup?: () => void;

  /** Whether it is a pipe, FIFO or socket: a write there can wait for a reader. */
  get canBlock(): boolean {
    if (this.#canBlock === undefined) this.#stat();
    return this.#canBlock!;
  }

  /**
   * Whether a read never waits: a regular file, directory or block device
   * (not a pipe, socket or terminal), so there is nothing to poll first.
   */
  get neverBlocks(): boolean {
    if (this.#neverBlocks === undefined) this.#stat();
    return this.#neverBlocks!;
  }

  #neverBlocks?: boolean;

  #stat(): void {
    const st = hostFstat(this.hostFd);
    const fmt = typeof st === "number" ? -1 : st.mode & 0o170000;
    this.#canBlock = fmt === -1 || fmt === 0o010000 || fmt === 0o140000;
    this.#neverBlocks = fmt === 0o100000 || fmt === 0o040000 || fmt === 0o060000;
  }

  /** Wraps a host fd; `cleanup` runs when the host fd closes. */
  constructor(
    hostFd: number,
    options: { owned?: boolean; path?: string; cleanup?: () => void; ops?: FileOps } = {},
  ) {
    this.hostFd = hostFd;
    this.owned = options.owned ?? true;
    this.path = options.path;
    this.ops = options.ops;
    this.#cleanup = options.cleanup;
  }

  /** Counts one more guest fd. */
  ref(): this {
    this.#refs++;
    return this;
  }

  /** Drops one guest fd; closes the host fd with the last. */
  unref(): void {
    if (--this.#refs !== 0 || !this.owned) return;
    hostSyscall(3, this.hostFd);
    this.#cleanup?.();
  }
}

/** Linux's default RLIMIT_NOFILE soft limit. */
export const MAX_FDS = 1024;

let hostTableSize: number | undefined;

/**
 * The size of this host process's own fd table (FDSize in
 * /proc/self/status): a first guest process starts with a table as large
 * as its launcher's, as a native program keeps the table of the process
 * that exec'd it.
 */
function launcherTableSize(): number {
  if (hostTableSize === undefined) {
    hostTableSize = 64;
    try {
      const m = /^FDSize:\s*(\d+)$/m.exec(Deno.readTextFileSync("/proc/self/status"));
      if (m) hostTableSize = Math.min(Number(m[1]), MAX_FDS);
    } catch { /* no /proc: Linux's smallest table */ }
  }
  return hostTableSize;
}

/** Guest fd → open file, with the close-on-exec flag per fd. */
export class FdTable {
  #files = new Map<number, { file: OpenFile; cloexec: boolean }>();
  /** The highest fd this table has held: Linux's table grows to fit it and never shrinks. */
  #highest = launcherTableSize() - 1;

  /**
   * How many fds the table has room for (Linux's `max_fds`): 64, or the
   * smallest power of two above the highest fd it has held. select(2)
   * ignores fds past it.
   */
  get capacity(): number {
    let n = 64;
    while (n <= this.#highest) n *= 2;
    return n;
  }
  /**
   * New fds are below this (RLIMIT_NOFILE's soft limit, kept by
   * src/syscalls/limits.ts): past it a new fd is EMFILE.
   */
  limit: number = MAX_FDS;
  #version = 0;

  /** Bumped at every change of which file an fd holds (the plain-call server's cue). */
  get version(): number {
    return this.#version;
  }

  /** Installs `file` at guest fd `fd`, closing what was there. */
  set(fd: number, file: OpenFile, cloexec = false): void {
    if (fd > this.#highest) this.#highest = fd;
    this.#version++;
    file.ref();
    this.#files.get(fd)?.file.unref();
    this.#files.set(fd, { file, cloexec });
  }

  /** Installs `file` at the lowest free fd ≥ `min`; EMFILE when none is left. */
  install(file: OpenFile, cloexec = false, min = 0): number {
    for (let fd = min; fd < this.limit; fd++) {
      if (!this.#files.has(fd)) {
        this.set(fd, file, cloexec);
        return fd;
      }
    }
    file.ref().unref(); // no fd left: release the description unless shared
    throw new SyscallError(E.EMFILE);
  }

  /** The file at `fd`; throws EBADF when there is none. */
  get(fd: number | bigint): OpenFile {
    return this.#entry(fd).file;
  }

  /** The close-on-exec flag of `fd`. */
  cloexec(fd: number | bigint): boolean {
    return this.#entry(fd).cloexec;
  }

  /** Sets the close-on-exec flag of `fd`. */
  setCloexec(fd: number | bigint, on: boolean): void {
    this.#entry(fd).cloexec = on;
  }

  /** Closes guest fd `fd`. */
  close(fd: number | bigint): void {
    const n = FdTable.number(fd);
    this.#entry(n).file.unref();
    this.#files.delete(n);
    this.#version++;
  }

  /**
   * A copy for a forked child (`exec`: for a new image, without the fds
   * marked close-on-exec): the same open file descriptions, so the
   * offsets stay shared, as on Linux.
   */
  copy(exec = false): FdTable {
    const t = new FdTable();
    t.limit = this.limit;
    for (const [fd, { file, cloexec }] of this.#files) {
      if (!(exec && cloexec)) t.set(fd, file, exec ? false : cloexec);
    }
    // execve keeps the table (and its size); a fork's is sized by the fds open.
    t.#highest = exec ? this.#highest : Math.max(-1, ...this.#files.keys());
    return t;
  }

  /** Closes every fd. */
  closeAll(): void {
    for (const { file } of this.#files.values()) file.unref();
    this.#files.clear();
    this.#version++;
  }

  /** All open fds. */
  entries(): [number, OpenFile][] {
    return [...this.#files.entries()].map(([fd, e]) => [fd, e.file]);
  }

  #entry(fd: number | bigint) {
    const e = this.#files.get(FdTable.number(fd));
    if (!e) throw new SyscallError(E.EBADF);
    return e;
  }

  /** A register's low 32 bits as the signed int the kernel sees. */
  static number(fd: number | bigint): number {
    return Number(BigInt.asIntN(32, BigInt(fd)));
  }
}
