/**
 * The guest's standard streams, as `Deno.Command` names them: inherited,
 * `/dev/null`, piped (collected into `RunResult.stdout`/`stderr`), a host
 * fd, or for stdin the bytes to read (`"piped"` stdin, a stream written
 * while the guest runs, has no place in a synchronous run). A piped stream is a memfd: the guest
 * writes to a regular file that never fills, so a run that the host cannot
 * drain meanwhile (the run loop is synchronous) never blocks on it.
 * @module
 */
import { OsError } from "../kvm/libc.ts";
import { bufferAddress, hostSyscall } from "../syscalls/host.ts";

/** Where a guest's stdout or stderr goes (`BootOptions.stdout`, `stderr`). */
export type StdioOutput = "inherit" | "null" | "piped" | number;
/** Where a guest's stdin comes from (`BootOptions.stdin`): as above, or the bytes to read. */
export type StdioInput = "inherit" | "null" | number | Uint8Array;

/** The options this module reads. */
export interface StdioOptions {
  /** Host fds for 0, 1 and 2 (default 0, 1, 2); `stdin`/`stdout`/`stderr` override. */
  stdio?: [number, number, number];
  /** The guest's stdin. */
  stdin?: StdioInput;
  /** The guest's stdout. */
  stdout?: StdioOutput;
  /** The guest's stderr. */
  stderr?: StdioOutput;
}

/** The host fds of a run's streams: which the guest owns, and the memfds kept to read back. */
export interface Stdio {
  /** Host fds for the guest's 0, 1 and 2. */
  fds: [number, number, number];
  /** Whether the guest's fd owns it (closes it at its last close). */
  owned: [boolean, boolean, boolean];
  /** Our own fds of piped outputs, read when the run ends. */
  captures: { stdout?: number; stderr?: number };
}

const NR_OPENAT = 257, NR_CLOSE = 3, NR_DUP = 32, NR_PWRITE64 = 18, NR_PREAD64 = 17;
const NR_MEMFD_CREATE = 319, NR_FSTAT = 5;
const AT_FDCWD = -100, O_RDWR = 2, O_CLOEXEC = 0o2000000, MFD_CLOEXEC = 1;

function check(r: bigint, what: string): number {
  if (r < 0n) throw new OsError(what, Number(-r));
  return Number(r);
}

function memfd(name: string): number {
  const n = new TextEncoder().encode(`hermitux-${name}\0`);
  return check(hostSyscall(NR_MEMFD_CREATE, bufferAddress(n), MFD_CLOEXEC), "memfd_create");
}

function devNull(): number {
  const path = new TextEncoder().encode("/dev/null\0");
  const r = hostSyscall(NR_OPENAT, AT_FDCWD, bufferAddress(path), O_RDWR | O_CLOEXEC);
  return check(r, "open /dev/null");
}

/**
 * Opens what `o` asks for; `closeStdio` (or the guest's fds, for the ones
 * it owns) closes it. Throws TypeError on a spec that is none of the above.
 */
export function openStdio(o: StdioOptions): Stdio {
  const base = o.stdio ?? [0, 1, 2];
  const out: Stdio = { fds: [...base], owned: [false, false, false], captures: {} };
  const opened: number[] = [];
  try {
    const set = (fd: 0 | 1 | 2, spec: StdioInput | StdioOutput | undefined) => {
      if (spec === undefined) return;
      if (spec === "inherit") out.fds[fd] = fd;
      else if (spec === "null") opened.push(out.fds[fd] = devNull());
      else if (typeof spec === "number") {
        if (!Number.isInteger(spec) || spec < 0) throw new TypeError(`bad host fd ${spec}`);
        out.fds[fd] = spec;
      } else if (spec === "piped" && fd > 0) {
        const m = memfd(fd === 1 ? "stdout" : "stderr");
        opened.push(out.fds[fd] = m);
        const own = check(hostSyscall(NR_DUP, m), "dup");
        opened.push(own);
        out.captures[fd === 1 ? "stdout" : "stderr"] = own;
      } else if (fd === 0 && spec instanceof Uint8Array) {
        const bytes = spec;
        const m = memfd("stdin");
        opened.push(out.fds[0] = m);
        for (let at = 0; at < bytes.length;) {
          const chunk = bytes.subarray(at);
          at += check(
            hostSyscall(NR_PWRITE64, m, bufferAddress(chunk), chunk.length, at),
            "write stdin",
          );
        }
      } else {
        throw new TypeError(`bad ${["stdin", "stdout", "stderr"][fd]}: ${String(spec)}`);
      }
      // What was opened here is the guest's: closed at its last close.
      out.owned[fd] = out.fds[fd] !== base[fd] && opened.includes(out.fds[fd]);
    };
    set(0, o.stdin);
    set(1, o.stdout);
    set(2, o.stderr);
  } catch (e) {
    for (const fd of opened) hostSyscall(NR_CLOSE, fd);
    throw e;
  }
  return out;
}

/** Closes the memfds kept to read piped outputs (a run that never ran). */
export function closeCaptures(s: Stdio): void {
  for (const fd of [s.captures.stdout, s.captures.stderr]) {
    if (fd !== undefined) hostSyscall(NR_CLOSE, fd);
  }
  s.captures = {};
}

/** Everything written to the memfd `fd` (from its start), which is then closed. */
export function readCapture(fd: number): Uint8Array {
  try {
    const st = new BigUint64Array(18);
    check(hostSyscall(NR_FSTAT, fd, bufferAddress(new Uint8Array(st.buffer))), "fstat");
    const out = new Uint8Array(Number(st[6])); // st_size
    for (let at = 0; at < out.length;) {
      const chunk = out.subarray(at);
      const n = check(hostSyscall(NR_PREAD64, fd, bufferAddress(chunk), chunk.length, at), "read");
      if (n === 0) return out.slice(0, at); // truncated meanwhile
      at += n;
    }
    return out;
  } finally {
    hostSyscall(NR_CLOSE, fd);
  }
}
