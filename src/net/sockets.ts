/**
 * Sockets on host sockets. IPv4 and IPv6 use the host's network stack as
 * they are, within the run's network grant (policy.ts): every destination
 * (connect, sendto, sendmsg) and local address (bind, listen) is checked
 * first. A Unix-domain socket path is resolved in the guest's mounts, so a
 * guest reaches only socket files it can see and binds only where it may
 * write; connecting to one it did not bind itself needs a `unix:` grant.
 * Abstract Unix addresses (host-global names) are refused.
 * @module
 */
import { E, SyscallError } from "../syscalls/errno.ts";
import { bufferAddress, hostSyscall } from "../syscalls/host.ts";
import { OpenFile } from "../syscalls/fdtable.ts";
import type { Process, SyscallModule } from "../syscalls/registry.ts";
import { inParent, resolveAt } from "../syscalls/fs.ts";
import { awaitReadable } from "../syscalls/stdio.ts";
import { grantsOf } from "../syscalls/grants.ts";
import { OPEN_FLAGS, openBeneath } from "../vfs/mounts.ts";
import { bytesToPath, components, pathToCString } from "../vfs/path.ts";
import { ipOf } from "./policy.ts";

const NR = {
  close: 3,
  socket: 41,
  connect: 42,
  accept: 43,
  sendto: 44,
  recvfrom: 45,
  sendmsg: 46,
  recvmsg: 47,
  shutdown: 48,
  bind: 49,
  listen: 50,
  getsockname: 51,
  getpeername: 52,
  socketpair: 53,
  setsockopt: 54,
  getsockopt: 55,
  accept4: 288,
  newfstatat: 262,
} as const;

const AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10;
const MSG_DONTWAIT = 0x40n;
const SOCK_CLOEXEC = 0o2000000, SOCK_NONBLOCK = 0o4000;
const SUN_PATH = 2, SUN_PATH_MAX = 108;
const SOCK_TYPE_MASK = 0xf, SOCK_RAW = 3, SOCK_PACKET = 10;
const S_IFMT = 0o170000, S_IFSOCK = 0o140000, AT_SYMLINK_NOFOLLOW = 0x100;
const O_CLOEXEC = 0o2000000;
const MSGHDR = { name: 0, namelen: 8, iov: 16, iovlen: 24, control: 32, controllen: 40, flags: 48 };
const IOV_MAX = 1024;

const int = (v: bigint) => Number(BigInt.asIntN(32, v));

function hostFd(p: Process, fd: bigint): number {
  return p.fds.get(fd).hostFd;
}

function installSocket(p: Process, host: number, flags: number): number {
  return p.fds.install(new OpenFile(host), (flags & SOCK_CLOEXEC) !== 0);
}

/** Copies a guest sockaddr in; EINVAL for a bad length, EFAULT for a bad pointer. */
function readAddr(p: Process, addr: bigint, len: bigint): Uint8Array {
  const n = int(len);
  if (n < 0 || n > 128) throw new SyscallError(E.EINVAL);
  return p.mem.slice(addr, n).slice();
}

/** The host file `name` in directory `dir` names: its `dev:ino` and mode, if it exists. */
function fileKey(dir: number, name: Uint8Array): { key: string; mode: number } | undefined {
  const st = new BigUint64Array(18);
  const r = hostSyscall(
    NR.newfstatat,
    dir,
    bufferAddress(name),
    bufferAddress(new Uint8Array(st.buffer)),
    AT_SYMLINK_NOFOLLOW,
  );
  if (r < 0n) return undefined;
  return { key: `${st[0]}:${st[1]}`, mode: Number(st[3] & 0xffffffffn) };
}

/**
 * Runs `op` with a host sockaddr for a guest one, within the network
 * grant. An IP address is checked (`bind`: as a local address, else as a
 * destination) and passed as it is. A Unix path becomes a path through
 * /proc/self/fd to the directory that holds it on its mount: `bind` needs
 * a writable mount and a missing name, and what it makes is remembered
 * as the guest's own; otherwise (connect, sendto) the socket file must
 * exist, and be the guest's own or granted (`unix:PATH`).
 */
function withHostAddr(
  p: Process,
  addr: Uint8Array,
  bind: boolean,
  op: (a: Uint8Array) => bigint,
): bigint {
  if (addr.length < 2) return op(addr);
  const family = addr[0] | (addr[1] << 8);
  const net = grantsOf(p).net;
  const ip = ipOf(addr);
  if (ip) {
    net.checkIp(ip);
    return op(addr);
  }
  if (family !== AF_UNIX) return op(addr);
  if (addr.length <= SUN_PATH) return op(addr); // autobind / unnamed
  if (addr[SUN_PATH] === 0) throw new SyscallError(E.EPERM);
  const raw = addr.subarray(SUN_PATH);
  const nul = raw.indexOf(0);
  const path = bytesToPath(nul < 0 ? raw : raw.subarray(0, nul));
  const r = resolveAt(p, -100n, path);
  if (bind) {
    return inParent(r, true, (dir, name) => {
      const res = op(unixAddr(`/proc/self/fd/${dir}/`, name));
      const made = res >= 0n ? fileKey(dir, name) : undefined;
      if (made) net.noteBound(made.key);
      return res;
    });
  }
  if (!r.mount) throw new SyscallError(E.ENOENT);
  const parts = components(r.rel);
  const name = pathToCString(parts.pop() ?? ".");
  const dir = openBeneath(
    r.mount.rootFd,
    parts.join("/"),
    OPEN_FLAGS.O_PATH | OPEN_FLAGS.O_DIRECTORY | O_CLOEXEC,
  );
  try {
    const file = fileKey(dir, name);
    // A socket of the host's: only one the guest made, or one granted.
    if (file && (file.mode & S_IFMT) === S_IFSOCK) net.checkUnix(r.guest, file.key);
    return op(unixAddr(`/proc/self/fd/${dir}/`, name));
  } finally {
    hostSyscall(NR.close, dir);
  }
}

/** A sockaddr_un for `prefix` + `name` (a NUL-terminated byte string). */
function unixAddr(prefix: string, name: Uint8Array): Uint8Array {
  const end = name.indexOf(0) < 0 ? name.length : name.indexOf(0);
  const path = new Uint8Array([...new TextEncoder().encode(prefix), ...name.subarray(0, end)]);
  if (path.length >= SUN_PATH_MAX) throw new SyscallError(E.ENAMETOOLONG);
  const a = new Uint8Array(SUN_PATH + path.length + 1);
  a[0] = AF_UNIX;
  a.set(path, SUN_PATH);
  return a;
}

/** getsockname/getpeername/accept out-params: (addr, addrlen) as Linux fills them. */
function addrOut(p: Process, addr: bigint, lenp: bigint, fill: (a: bigint, l: bigint) => bigint) {
  if (addr === 0n || lenp === 0n) return fill(0n, 0n);
  const o = p.mem.check(lenp, 4);
  const cap = p.mem.view.getInt32(o, true);
  if (cap < 0) throw new SyscallError(E.EINVAL);
  const buf = new Uint8Array(128), len = new Int32Array([128]);
  const r = fill(bufferAddress(buf), bufferAddress(new Uint8Array(len.buffer)));
  if (r < 0n) return r;
  const n = Math.min(cap, len[0]);
  p.mem.slice(addr, n).set(buf.subarray(0, n));
  p.mem.view.setInt32(o, len[0], true);
  return r;
}

/** A host msghdr whose name and iovecs point into guest memory (control dropped). */
function hostMsghdr(
  p: Process,
  msg: bigint,
  send = false,
): { hdr: BigUint64Array; iov: BigUint64Array; to?: Uint8Array } {
  const o = p.mem.check(msg, 56), v = p.mem.view;
  const name = v.getBigUint64(o + MSGHDR.name, true);
  const namelen = v.getUint32(o + MSGHDR.namelen, true);
  const iov = v.getBigUint64(o + MSGHDR.iov, true);
  const iovlen = Number(v.getBigUint64(o + MSGHDR.iovlen, true));
  if (iovlen > IOV_MAX) throw new SyscallError(E.EMSGSIZE);
  const host = new BigUint64Array(iovlen * 2);
  if (iovlen) {
    const io = p.mem.check(iov, iovlen * 16);
    for (let i = 0; i < iovlen; i++) {
      const base = v.getBigUint64(io + i * 16, true), len = v.getBigUint64(io + i * 16 + 8, true);
      host[i * 2] = len ? p.mem.hostAddress(base, len) : 0n;
      host[i * 2 + 1] = len;
    }
  }
  const hdr = new BigUint64Array(7);
  hdr[0] = name && namelen ? p.mem.hostAddress(name, namelen) : 0n;
  hdr[1] = name ? BigInt(namelen) : 0n;
  hdr[2] = bufferAddress(new Uint8Array(host.buffer));
  hdr[3] = BigInt(iovlen);
  // A destination goes through the grant (and a Unix path through the mounts).
  const to = send && name && namelen ? readAddr(p, name, BigInt(namelen)) : undefined;
  return { hdr, iov: host, to };
}

/** The sockets module. */
export const netModule: SyscallModule = {
  name: "net",
  partial: {
    socket: "AF_UNIX, AF_INET and AF_INET6 on the host's stack",
    bind: "IP addresses within the network grant (else EACCES); Unix paths inside writable " +
      "mounts; abstract Unix names EPERM",
    connect: "IP addresses within the network grant (else EACCES); Unix paths inside mounts, " +
      "to a socket the guest bound or one granted (else EACCES); abstract Unix names EPERM",
    listen: "IP sockets on a local address within the network grant (else EACCES)",
    sendto: "destinations as connect",
    sendmsg: "destinations as connect; no control messages (SCM_RIGHTS)",
    recvmsg: "control messages are dropped (MSG_CTRUNC)",
    getsockname: "a bound Unix socket shows its host path",
  },
  handlers: {
    socket({ args: [domain, type, proto], process: p }) {
      const d = int(domain);
      if (d !== AF_UNIX && d !== AF_INET && d !== AF_INET6) throw new SyscallError(E.EAFNOSUPPORT);
      const t = int(type);
      const kind = t & SOCK_TYPE_MASK;
      if (d !== AF_UNIX && (kind === SOCK_RAW || kind === SOCK_PACKET)) {
        grantsOf(p).net.checkAll("raw sockets");
      }
      const r = hostSyscall(NR.socket, d, (t & ~SOCK_CLOEXEC) | SOCK_CLOEXEC, proto);
      return r < 0n ? r : installSocket(p, Number(r), t);
    },
    socketpair({ args: [domain, type, proto, sv], process: p }) {
      const out = p.mem.check(sv, 8);
      const host = new Int32Array(2), t = int(type);
      const r = hostSyscall(
        NR.socketpair,
        int(domain),
        (t & ~SOCK_CLOEXEC) | SOCK_CLOEXEC,
        proto,
        bufferAddress(new Uint8Array(host.buffer)),
      );
      if (r < 0n) return r;
      p.mem.view.setInt32(out, installSocket(p, host[0], t), true);
      p.mem.view.setInt32(out + 4, installSocket(p, host[1], t), true);
      return 0;
    },
    connect({ args: [fd, addr, len], process: p }) {
      const h = hostFd(p, fd);
      return withHostAddr(
        p,
        readAddr(p, addr, len),
        false,
        (a) => hostSyscall(NR.connect, h, bufferAddress(a), a.length),
      );
    },
    bind({ args: [fd, addr, len], process: p }) {
      const h = hostFd(p, fd);
      return withHostAddr(
        p,
        readAddr(p, addr, len),
        true,
        (a) => hostSyscall(NR.bind, h, bufferAddress(a), a.length),
      );
    },
    listen({ args: [fd, backlog], process: p }) {
      const h = hostFd(p, fd);
      // An IP socket listens where it is bound (an unbound one on any address, any port).
      const buf = new Uint8Array(128), len = new Int32Array([128]);
      const r = hostSyscall(
        NR.getsockname,
        h,
        bufferAddress(buf),
        bufferAddress(new Uint8Array(len.buffer)),
      );
      const ip = r === 0n ? ipOf(buf.subarray(0, len[0])) : undefined;
      if (ip) grantsOf(p).net.checkIp(ip);
      return hostSyscall(NR.listen, h, backlog);
    },
    shutdown: ({ args: [fd, how], process: p }) => hostSyscall(NR.shutdown, hostFd(p, fd), how),
    accept: ({ args: [fd, addr, lenp], process: p }) => accept(p, fd, addr, lenp, 0),
    accept4: ({ args: [fd, addr, lenp, flags], process: p }) =>
      accept(p, fd, addr, lenp, int(flags)),
    getsockname: ({ args: [fd, addr, lenp], process: p }) =>
      addrOut(p, addr, lenp, (a, l) => hostSyscall(NR.getsockname, hostFd(p, fd), a, l)),
    getpeername: ({ args: [fd, addr, lenp], process: p }) =>
      addrOut(p, addr, lenp, (a, l) => hostSyscall(NR.getpeername, hostFd(p, fd), a, l)),
    sendto({ args: [fd, buf, len, flags, addr, alen], process: p }) {
      const h = hostFd(p, fd);
      const data = len ? p.mem.hostAddress(buf, len) : 0n;
      if (addr === 0n) return hostSyscall(NR.sendto, h, data, len, flags, 0, 0);
      return withHostAddr(
        p,
        readAddr(p, addr, alen),
        false,
        (a) => hostSyscall(NR.sendto, h, data, len, flags, bufferAddress(a), a.length),
      );
    },
    recvfrom({ args: [fd, buf, len, flags, addr, lenp], process: p }) {
      const h = hostFd(p, fd);
      if (!(flags & MSG_DONTWAIT) && awaitReadable(p, h)) return 0;
      const data = len ? p.mem.hostAddress(buf, len) : 0n;
      return addrOut(
        p,
        addr,
        lenp,
        (a, l) => hostSyscall(NR.recvfrom, h, data, len, flags, a, l),
      );
    },
    sendmsg({ args: [fd, msg, flags], process: p }) {
      const h = hostFd(p, fd);
      const { hdr, to } = hostMsghdr(p, msg, true);
      const control = p.mem.view.getBigUint64(p.mem.check(msg, 56) + MSGHDR.controllen, true);
      if (control !== 0n) throw new SyscallError(E.EOPNOTSUPP);
      const send = () =>
        hostSyscall(NR.sendmsg, h, bufferAddress(new Uint8Array(hdr.buffer)), flags);
      if (!to) return send();
      return withHostAddr(p, to, false, (a) => {
        hdr[0] = bufferAddress(a);
        hdr[1] = BigInt(a.length);
        return send();
      });
    },
    recvmsg({ args: [fd, msg, flags], process: p }) {
      const { hdr } = hostMsghdr(p, msg);
      if (!(flags & MSG_DONTWAIT) && awaitReadable(p, hostFd(p, fd))) return 0;
      const r = hostSyscall(
        NR.recvmsg,
        hostFd(p, fd),
        bufferAddress(new Uint8Array(hdr.buffer)),
        flags,
      );
      if (r < 0n) return r;
      const o = p.mem.check(msg, 56), v = p.mem.view;
      v.setUint32(o + MSGHDR.namelen, Number(hdr[1] & 0xffffffffn), true);
      // No control buffer went to the host: the guest's reads as empty, and
      // the host's MSG_CTRUNC says when something (e.g. SCM_RIGHTS) was dropped.
      v.setBigUint64(o + MSGHDR.controllen, 0n, true);
      v.setInt32(o + MSGHDR.flags, Number(hdr[6] & 0xffffffffn), true);
      return r;
    },
    setsockopt({ args: [fd, level, name, val, len], process: p }) {
      const n = int(len);
      if (n < 0) throw new SyscallError(E.EINVAL);
      const a = n ? p.mem.hostAddress(val, n) : 0n;
      return hostSyscall(NR.setsockopt, hostFd(p, fd), level, name, a, n);
    },
    getsockopt({ args: [fd, level, name, val, lenp], process: p }) {
      const o = p.mem.check(lenp, 4);
      const cap = p.mem.view.getInt32(o, true);
      if (cap < 0) throw new SyscallError(E.EINVAL);
      const buf = new Uint8Array(Math.min(cap, 256)), len = new Int32Array([buf.length]);
      const r = hostSyscall(
        NR.getsockopt,
        hostFd(p, fd),
        level,
        name,
        bufferAddress(buf),
        bufferAddress(new Uint8Array(len.buffer)),
      );
      if (r < 0n) return r;
      p.mem.slice(val, len[0]).set(buf.subarray(0, len[0]));
      p.mem.view.setInt32(o, len[0], true);
      return r;
    },
  },
};

function accept(p: Process, fd: bigint, addr: bigint, lenp: bigint, flags: number) {
  if (flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK)) throw new SyscallError(E.EINVAL);
  const h = hostFd(p, fd);
  // A listening socket polls readable when a connection waits.
  if (awaitReadable(p, h)) return 0;
  const r = addrOut(p, addr, lenp, (a, l) => hostSyscall(NR.accept4, h, a, l, flags | O_CLOEXEC));
  return r < 0n ? r : installSocket(p, Number(r), flags);
}
