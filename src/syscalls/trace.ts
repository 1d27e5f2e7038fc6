/**
 * strace-style lines for `--trace`: `write(1, "hi\n", 3) = 3`.
 * @module
 */
import { ERRNO_NAMES } from "./errno.ts";
import { strerror } from "../kvm/libc.ts";
import { syscallName } from "./table.ts";
import type { GuestMemory } from "../vm/memory.ts";

/*
 * Argument kinds by syscall: d signed int, u unsigned, x hex, f fd, s path,
 * b input buffer (length in the next argument), B output buffer (length =
 * result), V/W input/output iovec array (count next), P mmap prot, M mmap flags, I ioctl request, A arch_prctl code.
 */
const SIGNATURES: Record<string, string> = {
  read: "fBu",
  write: "fbu",
  open: "sxo",
  close: "f",
  stat: "sx",
  fstat: "fx",
  lstat: "sx",
  lseek: "fdd",
  mmap: "xuPMfx",
  mprotect: "xuP",
  munmap: "xu",
  brk: "x",
  rt_sigaction: "dxxu",
  rt_sigprocmask: "dxxu",
  rt_sigreturn: "",
  rt_sigpending: "xu",
  rt_sigtimedwait: "xxxu",
  rt_sigqueueinfo: "ddx",
  rt_sigsuspend: "xu",
  sigaltstack: "xx",
  kill: "dd",
  tkill: "dd",
  tgkill: "ddd",
  pause: "",
  alarm: "u",
  getitimer: "dx",
  setitimer: "dxx",
  ioctl: "fIx",
  pread64: "fBud",
  pwrite64: "fbud",
  readv: "fWd",
  writev: "fVd",
  access: "sd",
  pipe: "x",
  dup: "f",
  dup2: "ff",
  getpid: "",
  exit: "d",
  uname: "x",
  fcntl: "fdx",
  getcwd: "xu",
  chdir: "s",
  readlink: "sxu",
  getuid: "",
  getgid: "",
  geteuid: "",
  getegid: "",
  getppid: "",
  gettid: "",
  arch_prctl: "Ax",
  exit_group: "d",
  set_tid_address: "x",
  clock_gettime: "dx",
  gettimeofday: "xx",
  time: "x",
  openat: "fsxo",
  newfstatat: "fsxx",
  set_robust_list: "xu",
  prlimit64: "ddxx",
  getrandom: "xux",
  rseq: "xuxx",
  prctl: "dxxxx",
}; // deno-fmt-ignore

const PROT = ["PROT_READ", "PROT_WRITE", "PROT_EXEC"];
const MAP: Record<number, string> = {
  0x1: "MAP_SHARED",
  0x2: "MAP_PRIVATE",
  0x10: "MAP_FIXED",
  0x20: "MAP_ANONYMOUS",
  0x100: "MAP_GROWSDOWN",
  0x800: "MAP_DENYWRITE",
  0x1000: "MAP_EXECUTABLE",
  0x4000: "MAP_NORESERVE",
  0x8000: "MAP_POPULATE",
  0x20000: "MAP_STACK",
  0x100000: "MAP_FIXED_NOREPLACE",
}; // deno-fmt-ignore
const IOCTL: Record<number, string> = {
  0x5401: "TCGETS", 0x5402: "TCSETS", 0x5413: "TIOCGWINSZ", 0x541b: "FIONREAD",
};
const ARCH_PRCTL: Record<number, string> = {
  0x1001: "ARCH_SET_GS",
  0x1002: "ARCH_SET_FS",
  0x1003: "ARCH_GET_FS",
  0x1004: "ARCH_GET_GS",
};
const POINTER_RESULT = new Set(["mmap", "brk"]);
const MAX_SHOWN = 32;

function hex(v: bigint): string {
  return "0x" + v.toString(16);
}

function flags(v: bigint, names: Record<number, string> | string[], zero: string): string {
  const parts: string[] = [];
  let rest = Number(v & 0xffffffffn);
  const table = Array.isArray(names) ? Object.fromEntries(names.map((n, i) => [1 << i, n])) : names;
  for (const [bit, name] of Object.entries(table)) {
    if (rest & Number(bit)) {
      parts.push(name);
      rest &= ~Number(bit);
    }
  }
  if (rest) parts.push(hex(BigInt(rest)));
  return parts.length ? parts.join("|") : zero;
}

/** Escapes bytes as strace does: printable ASCII and C escapes, else \xNN. */
export function quote(bytes: Uint8Array, more = false): string {
  let s = '"';
  for (const b of bytes) {
    if (b === 0x0a) s += "\\n";
    else if (b === 0x09) s += "\\t";
    else if (b === 0x0d) s += "\\r";
    else if (b === 0x22 || b === 0x5c) s += "\\" + String.fromCharCode(b);
    else if (b >= 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += "\\x" + b.toString(16).padStart(2, "0");
  }
  return s + '"' + (more ? "..." : "");
}

function buffer(mem: GuestMemory, addr: bigint, len: bigint): string {
  const n = Number(len > BigInt(MAX_SHOWN) ? BigInt(MAX_SHOWN) : len);
  try {
    return quote(mem.slice(addr, n), len > BigInt(n));
  } catch {
    return hex(addr);
  }
}

function iovecs(mem: GuestMemory, addr: bigint, count: bigint, limit?: bigint): string {
  try {
    const n = Math.min(Number(count), 8);
    const a = mem.check(addr, n * 16);
    let left = limit;
    const parts = [];
    for (let i = 0; i < n; i++) {
      const base = mem.view.getBigUint64(a + i * 16, true);
      const len = mem.view.getBigUint64(a + i * 16 + 8, true);
      const shown = left === undefined ? len : len < left ? len : left;
      if (left !== undefined) left -= shown;
      parts.push(`{iov_base=${buffer(mem, base, shown)}, iov_len=${len}}`);
    }
    return `[${parts.join(", ")}${count > BigInt(n) ? ", ..." : ""}]`;
  } catch {
    return hex(addr);
  }
}

/** Formats one finished syscall as strace would print it. */
export function formatSyscall(
  mem: GuestMemory,
  nr: number,
  args: readonly bigint[],
  ret: bigint,
): string {
  const name = syscallName(nr);
  const sig = SIGNATURES[name] ?? "xxxxxx";
  const shown = [...sig].map((kind, i) => {
    const a = args[i];
    switch (kind) {
      case "d":
      case "f":
        return String(BigInt.asIntN(32, a));
      case "u":
        return String(a);
      case "s":
        try {
          return quote(new TextEncoder().encode(mem.cString(a)));
        } catch {
          return hex(a);
        }
      case "b":
        return buffer(mem, a, args[i + 1]);
      case "B":
        return ret >= 0n ? buffer(mem, a, ret) : hex(a);
      case "V":
        return iovecs(mem, a, args[i + 1]);
      case "W":
        return ret >= 0n ? iovecs(mem, a, args[i + 1], ret) : hex(a);
      case "P":
        return flags(a, PROT, "PROT_NONE");
      case "M":
        return flags(a, MAP, "0");
      case "I":
        return IOCTL[Number(a)] ?? hex(a);
      case "A":
        return ARCH_PRCTL[Number(a)] ?? hex(a);
      default:
        return a === 0n ? "NULL" : hex(a);
    }
  });
  const r = BigInt.asIntN(64, ret);
  const result = r < 0n && r > -4096n
    ? `-1 ${ERRNO_NAMES[Number(-r)] ?? "E?"} (${strerror(Number(-r))})`
    : POINTER_RESULT.has(name)
    ? hex(r)
    : String(r);
  return `${name}(${shown.join(", ")}) = ${result}`;
}
