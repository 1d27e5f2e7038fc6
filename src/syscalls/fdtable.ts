/**
 * The guest's file descriptor table. Each guest fd names an open file
 * description; for now these are host fds the guest was given (stdio).
 * @module
 */
import { E, SyscallError } from "./errno.ts";

/** An open file as the guest sees it. */
export interface OpenFile {
  /** The host fd that backs it. */
  readonly hostFd: number;
  /** Whether closing the last guest fd closes the host fd. */
  readonly owned: boolean;
}

/** Guest fd → open file. */
export class FdTable {
  #files = new Map<number, OpenFile>();

  /** Installs `file` at guest fd `fd`. */
  set(fd: number, file: OpenFile): void {
    this.#files.set(fd, file);
  }

  /** The file at `fd`; throws EBADF when there is none. */
  get(fd: number | bigint): OpenFile {
    const f = this.#files.get(Number(BigInt.asIntN(32, BigInt(fd))));
    if (!f) throw new SyscallError(E.EBADF);
    return f;
  }

  /** Removes `fd`; returns the file so the caller may release it. */
  remove(fd: number | bigint): OpenFile {
    const n = Number(BigInt.asIntN(32, BigInt(fd)));
    const f = this.get(n);
    this.#files.delete(n);
    return f;
  }

  /** All open fds. */
  entries(): [number, OpenFile][] {
    return [...this.#files.entries()];
  }
}
