/**
 * `process.terminal`: the container gets a pseudo-terminal. Its master end
 * goes to whoever listens on `--console-socket` (the shim, which copies it
 * to `ctr run -t`'s terminal), sent with SCM_RIGHTS as runc sends it; its
 * slave end becomes the guest's stdin, stdout and stderr and the holder's
 * controlling terminal (it calls setsid), so Ctrl-C typed there is a
 * SIGINT to the holder, which raises it in the guest.
 * @module
 */
import { bufferAddress, hostSyscall } from "../syscalls/host.ts";
import { pathToCString } from "../vfs/path.ts";

const NR = {
  open: 2,
  close: 3,
  ioctl: 16,
  socket: 41,
  connect: 42,
  sendmsg: 46,
  setsid: 112,
} as const;
const O_RDWR = 2, O_NOCTTY = 0o400, O_CLOEXEC = 0o2000000;
const TIOCSWINSZ = 0x5414, TIOCSCTTY = 0x540e, TIOCSPTLCK = 0x40045431, TIOCGPTPEER = 0x5441;
const AF_UNIX = 1, SOCK_STREAM = 1, SOL_SOCKET = 1, SCM_RIGHTS = 1;

function check(what: string, r: bigint): number {
  if (r < 0n) throw new Error(`console: ${what}: errno ${-r}`);
  return Number(r);
}

/** Sends `fd` over the connected Unix socket `sock` (SCM_RIGHTS), with `name` as the data. */
function sendFd(sock: number, fd: number, name: string): void {
  const data = new TextEncoder().encode(name);
  const iov = new BigUint64Array([bufferAddress(data), BigInt(data.length)]);
  const cmsg = new Uint8Array(24), cv = new DataView(cmsg.buffer);
  cv.setBigUint64(0, 20n, true); // cmsg_len: CMSG_LEN(sizeof(int))
  cv.setInt32(8, SOL_SOCKET, true);
  cv.setInt32(12, SCM_RIGHTS, true);
  cv.setInt32(16, fd, true);
  const msg = new BigUint64Array([
    0n, // msg_name
    0n, // msg_namelen
    bufferAddress(new Uint8Array(iov.buffer)),
    1n,
    bufferAddress(cmsg),
    BigInt(cmsg.length),
    0n, // msg_flags
  ]);
  check("sendmsg", hostSyscall(NR.sendmsg, sock, bufferAddress(new Uint8Array(msg.buffer)), 0));
}

/** Connects a Unix stream socket to `path`. */
function connectUnix(path: string): number {
  const sock = check("socket", hostSyscall(NR.socket, AF_UNIX, SOCK_STREAM | O_CLOEXEC, 0));
  const addr = new Uint8Array(110);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  const bytes = new TextEncoder().encode(path);
  if (bytes.length > 107) throw new Error(`console: socket path too long: ${path}`);
  addr.set(bytes, 2);
  const r = hostSyscall(NR.connect, sock, bufferAddress(addr), 2 + bytes.length + 1);
  if (r < 0n) {
    hostSyscall(NR.close, sock);
    check(`connect ${path}`, r);
  }
  return sock;
}

/**
 * Makes the container's terminal: sends its master to `consoleSocket`,
 * makes the slave this process's controlling terminal and returns the
 * slave's fd (the guest's stdio).
 */
export function openConsole(
  consoleSocket: string,
  size?: { height: number; width: number },
): number {
  const ptmx = pathToCString("/dev/ptmx");
  const master = check(
    "/dev/ptmx",
    hostSyscall(NR.open, bufferAddress(ptmx), O_RDWR | O_NOCTTY | O_CLOEXEC),
  );
  try {
    check("unlockpt", hostSyscall(NR.ioctl, master, TIOCSPTLCK, bufferAddress(new Uint8Array(4))));
    if (size?.height && size?.width) {
      const ws = new Uint16Array([size.height, size.width, 0, 0]);
      hostSyscall(NR.ioctl, master, TIOCSWINSZ, bufferAddress(new Uint8Array(ws.buffer)));
    }
    const slave = check("open slave", hostSyscall(NR.ioctl, master, TIOCGPTPEER, O_RDWR));
    // A session of its own with the pty as its terminal: Ctrl-C signals the holder.
    hostSyscall(NR.setsid);
    hostSyscall(NR.ioctl, slave, TIOCSCTTY, 0);
    const sock = connectUnix(consoleSocket);
    try {
      sendFd(sock, master, "/dev/ptmx");
    } finally {
      hostSyscall(NR.close, sock);
    }
    return slave;
  } finally {
    hostSyscall(NR.close, master);
  }
}
