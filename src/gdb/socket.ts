/**
 * The gdb stub's TCP socket, by plain blocking host syscalls: the guest
 * runs on this (the main) thread and is stopped while gdb is served, so
 * there is no event loop to give the socket to (`Deno.listen` would need
 * one). IPv4, loopback unless asked otherwise. A signal (the run's host
 * timer) interrupts a wait with EINTR, which is retried.
 * @module
 */
import { bufferAddress, hostSyscall } from "../syscalls/host.ts";
import { OsError } from "../kvm/libc.ts";

const NR = {
  read: 0,
  write: 1,
  close: 3,
  poll: 7,
  socket: 41,
  bind: 49,
  listen: 50,
  getsockname: 51,
  setsockopt: 54,
  accept4: 288,
} as const;
const AF_INET = 2, SOCK_STREAM = 1, SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1, SO_REUSEADDR = 2, IPPROTO_TCP = 6, TCP_NODELAY = 1;
const EINTR = 4, POLLIN = 1;

/** Where the stub listens. */
export interface ListenAddress {
  /** An IPv4 address or `localhost` (default 127.0.0.1). */
  host?: string;
  /** The TCP port; 0 picks a free one. */
  port: number;
}

/** Parses `[HOST:]PORT` (`--gdb`); throws a one-line error. */
export function parseListenAddress(spec: string): ListenAddress {
  const m = /^(?:(.*):)?(\d{1,5})$/.exec(spec.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new Error(`bad --gdb '${spec}' (use [HOST:]PORT)`);
  return { host: m[1] || undefined, port };
}

function ipv4(host: string): number[] {
  const h = host === "localhost" ? "127.0.0.1" : host;
  const parts = h.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`gdb: '${host}' is not an IPv4 address`);
  }
  return parts;
}

function check(what: string, r: bigint): number {
  if (r < 0n) throw new OsError(what, Number(-r));
  return Number(r);
}

/** Retries `f` while it fails with EINTR. */
function retry(f: () => bigint): bigint {
  for (;;) {
    const r = f();
    if (r !== BigInt(-EINTR)) return r;
  }
}

/** A listening socket, and the one connection accepted from it. */
export class GdbSocket {
  /** The listening fd (-1 once closed). */
  #listenFd: number;
  /** The connection's fd, or -1. */
  #fd = -1;
  /** The address listened on, with the port actually bound. */
  readonly host: string;
  /** The port bound (the one asked for, or the kernel's pick for 0). */
  readonly port: number;

  /** Binds and listens on `addr`. */
  constructor(addr: ListenAddress) {
    this.host = addr.host === "localhost" || !addr.host ? "127.0.0.1" : addr.host;
    const ip = ipv4(this.host);
    const fd = check("socket", hostSyscall(NR.socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    try {
      const one = new Int32Array([1]);
      hostSyscall(NR.setsockopt, fd, SOL_SOCKET, SO_REUSEADDR, bufferAddress(u8(one)), 4);
      const sa = new Uint8Array(16);
      const v = new DataView(sa.buffer);
      v.setUint16(0, AF_INET, true);
      v.setUint16(2, addr.port, false);
      sa.set(ip, 4);
      check(`bind ${this.host}:${addr.port}`, hostSyscall(NR.bind, fd, bufferAddress(sa), 16));
      check("listen", hostSyscall(NR.listen, fd, 1));
      const len = new Int32Array([16]);
      check(
        "getsockname",
        hostSyscall(NR.getsockname, fd, bufferAddress(sa), bufferAddress(u8(len))),
      );
      this.port = v.getUint16(2, false);
    } catch (e) {
      hostSyscall(NR.close, fd);
      throw e;
    }
    this.#listenFd = fd;
  }

  /** Whether a connection is open. */
  get connected(): boolean {
    return this.#fd >= 0;
  }

  /** Waits for gdb to connect (once); the listening socket is closed then. */
  accept(): void {
    if (this.#fd >= 0) return;
    const fd = check(
      "accept",
      retry(() => hostSyscall(NR.accept4, this.#listenFd, 0, 0, SOCK_CLOEXEC)),
    );
    const one = new Int32Array([1]);
    hostSyscall(NR.setsockopt, fd, IPPROTO_TCP, TCP_NODELAY, bufferAddress(u8(one)), 4);
    this.#fd = fd;
    hostSyscall(NR.close, this.#listenFd);
    this.#listenFd = -1;
  }

  /** Bytes received (blocking); an empty array when gdb has gone. */
  read(): Uint8Array {
    if (this.#fd < 0) return new Uint8Array(0);
    const buf = new Uint8Array(4096);
    const r = retry(() => hostSyscall(NR.read, this.#fd, bufferAddress(buf), buf.length));
    return r <= 0n ? new Uint8Array(0) : buf.subarray(0, Number(r));
  }

  /** Whether bytes wait to be read (or the peer closed), without blocking. */
  readable(): boolean {
    if (this.#fd < 0) return false;
    const pfd = new Uint8Array(8);
    const v = new DataView(pfd.buffer);
    v.setInt32(0, this.#fd, true);
    v.setInt16(4, POLLIN, true);
    return hostSyscall(NR.poll, bufferAddress(pfd), 1, 0) > 0n;
  }

  /** Sends all of `data`; false if the connection failed. */
  write(data: Uint8Array): boolean {
    let off = 0;
    while (off < data.length && this.#fd >= 0) {
      const part = data.subarray(off);
      const r = retry(() => hostSyscall(NR.write, this.#fd, bufferAddress(part), part.length));
      if (r <= 0n) return false;
      off += Number(r);
    }
    return off === data.length;
  }

  /** Closes the connection and the listening socket. */
  close(): void {
    for (const fd of [this.#fd, this.#listenFd]) if (fd >= 0) hostSyscall(NR.close, fd);
    this.#fd = this.#listenFd = -1;
  }
}

function u8(a: Int32Array): Uint8Array {
  return new Uint8Array(a.buffer);
}
