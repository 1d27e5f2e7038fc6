/**
 * What /proc says of a guest process: the contents of /proc/PID/stat,
 * status, statm, cmdline, comm and maps, in Linux's formats (proc(5)),
 * from the process table's record of each process (src/process/table.ts)
 * and its image. Kept apart from the names and file calls
 * (src/syscalls/procfs.ts) because it is most of the code: each file has
 * many fields, and the numbers come from many places (pids and groups from
 * the table, threads and their states from the VM, signal sets, the memory
 * map, capabilities, the hermitux process's own terminal and CPU masks).
 * @module
 */
import { hostClockNs, hostSyscall } from "./host.ts";
import type { Process } from "./registry.ts";
import { processesOf, type ProcInfo } from "./procs.ts";
import { caps, comm } from "./process.ts";
import { SIG_DFL, SIG_IGN, signalsOf } from "./signal.ts";
import { threadsOf } from "./thread.ts";
import { libc } from "../kvm/libc.ts";
import { pathToCString } from "../vfs/path.ts";

const NR_GETPGID = 121, NR_GETSID = 124, CLOCK_BOOTTIME = 7;
/** Linux's clock ticks per second in /proc (USER_HZ). */
const USER_HZ = 100n;
const PAGE = 4096;
/** PF_RANDOMIZE, and PF_EXITING | PF_SIGNALED once ended: the task flags /proc shows. */
const PF_LIVE = 0x400000, PF_ENDED = 0x400404;
const latin1 = (s: string) => pathToCString(s).subarray(0, -1);

/** A host clock (CLOCK_*) in ns. */
export function clockNs(id: number): bigint {
  return hostClockNs(id);
}

/** The host's CLOCK_BOOTTIME in ns: what /proc/uptime and a process's start time count. */
export function boottimeNs(): bigint {
  return clockNs(CLOCK_BOOTTIME);
}

/** One thread of a guest process as /proc shows it (the process itself when tid is its pid). */
export interface Task {
  readonly proc: ProcInfo;
  readonly tid: number;
}

/** The guest's processes: from the process table, or the caller alone without one. */
export function processes(p: Process): ProcInfo[] {
  const h = processesOf(p);
  if (h) return h.processes();
  const pgid = Number(hostSyscall(NR_GETPGID, 0)), sid = Number(hostSyscall(NR_GETSID, 0));
  return [
    {
      pid: p.pid,
      ppid: Deno.ppid,
      pgid,
      sid,
      process: p,
      started: 0n,
      vforkWait: false,
      stopped: false,
    },
  ];
}

/** The tid of the caller's thread. */
export const tidOf = (p: Process) => threadsOf(p)?.current ?? p.pid;

/** The live threads of `q` (a zombie has its one). */
export function threads(q: ProcInfo): { tid: number; parked: boolean }[] {
  if (q.status !== undefined) return [{ tid: q.pid, parked: false }];
  const list = threadsOf(q.process)?.list() ?? [{ tid: q.pid, parked: false }];
  return list.sort((a, b) => a.tid - b.tid);
}

/** The process with pid `n`, or the thread with tid `n` (not listed in /proc, as on Linux). */
export function findTask(p: Process, n: number): Task | undefined {
  const all = processes(p);
  const q = all.find((i) => i.pid === n);
  if (q) return { proc: q, tid: n };
  for (const i of all) {
    if (i.status === undefined && threadsOf(i.process)?.has(n)) return { proc: i, tid: n };
  }
  return undefined;
}

/**
 * The files of /proc/PID (and of /proc/PID/task/TID), by name: what each
 * holds for caller `p` (the caller's own thread shows as running).
 */
export const TASK_FILES: Record<string, (p: Process, t: Task) => Uint8Array> = {
  stat: (p, t) => latin1(statLine(p, t)),
  status: (p, t) => latin1(statusText(p, t)),
  statm: (_, t) => {
    const m = memory(t.proc), pg = (n: number) => Math.floor(n / PAGE);
    const fields = m
      ? [m.size, m.rss, m.file, m.exe, 0, m.data + m.stack, 0]
      : [0, 0, 0, 0, 0, 0, 0];
    return latin1(fields.map((n) => `${n && pg(n)}`).join(" ") + "\n");
  },
  cmdline: (_, t) =>
    t.proc.status !== undefined
      ? new Uint8Array()
      : new TextEncoder().encode(t.proc.process.argv.map((a) => a + "\0").join("")),
  comm: (_, t) => latin1(name(t.proc) + "\n"),
  maps: (_, t) => latin1(t.proc.status !== undefined ? "" : t.proc.process.mappings()),
};

/** The process's name (comm), as bytes in a string. */
function name(q: ProcInfo): string {
  const c = comm(q.process), end = c.indexOf(0);
  return String.fromCharCode(...c.subarray(0, end < 0 ? c.length : end));
}

/** A thread's state letter: the caller runs; a thread parked in a call sleeps. */
function stateOf(p: Process, t: Task): "R" | "S" | "D" | "T" | "Z" {
  const q = t.proc;
  if (q.status !== undefined) return "Z";
  if (q.stopped) return "T";
  if (q.process === p && tidOf(p) === t.tid) return "R";
  if (q.vforkWait) return "D";
  return threads(q).find((x) => x.tid === t.tid)?.parked ? "S" : "R";
}

const STATES = {
  R: "R (running)",
  S: "S (sleeping)",
  D: "D (disk sleep)",
  T: "T (stopped)",
  Z: "Z (zombie)",
};

/** The hermitux process's own fields: its terminal is the guest's (as a native child's). */
function hostStat(): string[] {
  try {
    const s = Deno.readTextFileSync("/proc/self/stat");
    return s.slice(s.lastIndexOf(")") + 2).split(" ");
  } catch {
    return [];
  }
}

/** tty_nr and tpgid: the host's while `q` is in the session it started in, else none. */
function terminal(q: ProcInfo): [string, string] {
  const own = hostStat(); // state ppid pgrp session tty_nr tpgid …
  if (own.length < 6 || Number(own[3]) !== q.sid) return ["0", "-1"];
  return [own[4], own[5]];
}

/** Signal masks as bit sets: pending, blocked, ignored, caught. */
function signalSets(t: Task): bigint[] {
  if (t.proc.status !== undefined) return [0n, 0n, 0n, 0n];
  const s = signalsOf(t.proc.process);
  let ignored = 0n, caught = 0n;
  for (let sig = 1; sig <= 64; sig++) {
    if (sig === 9 || sig === 19) continue;
    const h = s.action(sig).handler;
    if (h === SIG_IGN) ignored |= 1n << BigInt(sig - 1);
    else if (h !== SIG_DFL) caught |= 1n << BigInt(sig - 1);
  }
  return [s.pending, s.maskOf(t.tid), ignored, caught];
}

/** Start time in clock ticks since boot, as stat's field 22. */
const ticks = (q: ProcInfo) => q.started / (1_000_000_000n / USER_HZ);

function statLine(p: Process, t: Task): string {
  const q = t.proc, zombie = q.status !== undefined, m = memory(q);
  const sigs = signalSets(t).join(" ");
  return [
    `${t.tid} (${name(q)}) ${stateOf(p, t)} ${q.ppid} ${q.pgid} ${q.sid}`,
    ...terminal(q),
    zombie ? PF_ENDED : PF_LIVE,
    "0 0 0 0", // minflt cminflt majflt cmajflt
    "0 0 0 0", // utime stime cutime cstime: not measured per process
    "20 0", // priority nice
    threads(q).length,
    0, // itrealvalue
    ticks(q),
    `${m?.size ?? 0} ${m ? Math.floor(m.rss / PAGE) : 0} 18446744073709551615`, // vsize rss rsslim
    `${m?.startcode ?? 0} ${m?.endcode ?? 0} ${m?.stackTop ?? 0} 0 0`, // … kstkesp kstkeip
    sigs, // signal blocked sigignore sigcatch
    "0 0 0 17 0 0 0 0 0 0", // wchan nswap cnswap exit_signal processor rt_priority … cguest_time
    "0 0 0 0 0 0 0", // start_data end_data start_brk arg_start arg_end env_start env_end
    zombie ? q.status : 0,
  ].join(" ") + "\n";
}

/** The lines of the hermitux process's own status that are the guest's too. */
function hostStatus(): Map<string, string> {
  const out = new Map<string, string>();
  try {
    for (const line of Deno.readTextFileSync("/proc/self/status").split("\n")) {
      const colon = line.indexOf(":");
      if (colon > 0) out.set(line.slice(0, colon), line.slice(colon + 1).trim());
    }
  } catch { /* no host /proc: those lines are left out */ }
  return out;
}

/** `Key:\tvalue` lines, a key for each value. */
const rows = (keys: string, ...values: unknown[]) =>
  keys.split(" ").map((k, i) => `${k}:\t${values[i]}\n`).join("");

function statusText(p: Process, t: Task): string {
  const q = t.proc, zombie = q.status !== undefined, host = hostStatus(), m = memory(q);
  const ids = (n: number) => `${n}\t${n}\t${n}\t${n}`;
  const hex = (n: bigint | number) => n.toString(16).padStart(16, "0");
  const c = zombie ? undefined : caps(q.process);
  const cap = (i: number) => hex(c ? (BigInt(c[i + 1]) << 32n) | BigInt(c[i]) : 0);
  const bound = host.get("CapBnd") ?? hex(0);
  const umask = zombie ? undefined : Number(q.process.state.get("umask") ?? 0o022);
  return rows("Name", name(q).replaceAll("\\", "\\\\").replaceAll("\n", "\\n")) +
    (umask === undefined ? "" : rows("Umask", umask.toString(8).padStart(4, "0"))) +
    rows("State Tgid Ngid Pid PPid TracerPid", STATES[stateOf(p, t)], q.pid, 0, t.tid, q.ppid, 0) +
    rows("Uid Gid", ids(Deno.uid() ?? 0), ids(Deno.gid() ?? 0)) +
    rows("FDSize Groups", zombie ? 0 : fdSize(q.process), host.get("Groups") ?? "") +
    rows("NStgid NSpid NSpgid NSsid", q.pid, t.tid, q.pgid, q.sid) +
    (m ? vmRows(m) : "") +
    rows("Threads SigQ", threads(q).length, `0/${host.get("SigQ")?.split("/")[1] ?? 0}`) +
    rows("SigPnd ShdPnd SigBlk SigIgn SigCgt", ...[0n, ...signalSets(t)].map(hex)) +
    rows("CapInh CapPrm CapEff CapBnd CapAmb", cap(4), cap(2), cap(0), bound, hex(0)) +
    rows("NoNewPrivs Seccomp Seccomp_filters", 0, 0, 0) +
    ["Cpus_allowed", "Cpus_allowed_list", "Mems_allowed", "Mems_allowed_list"]
      .filter((k) => host.has(k)).map((k) => rows(k, host.get(k))).join("") +
    rows("voluntary_ctxt_switches nonvoluntary_ctxt_switches", 0, 0);
}

/** status's memory lines, VmPeak to VmSwap. */
function vmRows(m: Memory): string {
  const kb = (n: number) => `${String(Math.floor(n / 1024)).padStart(8)} kB`;
  const sizes = [m.size, m.size, 0, 0, m.rss, m.rss, m.rss - m.file, m.file, 0];
  return rows("VmPeak VmSize VmLck VmPin VmHWM VmRSS RssAnon RssFile RssShmem", ...sizes.map(kb)) +
    rows("VmData VmStk VmExe VmLib VmPTE VmSwap", ...[m.data, m.stack, m.exe, m.lib, 0, 0].map(kb));
}

/** Linux's fd table size: 64, doubled until the highest fd fits. */
function fdSize(p: Process): number {
  let size = 64;
  for (const [fd] of p.fds.entries()) while (fd >= size) size *= 2;
  return size;
}

/** A process's memory, in bytes, by kind (see status's Vm* lines); where its code and stack are. */
type Memory = Record<"size" | "rss" | "file" | "data" | "stack" | "exe" | "lib", number> & {
  startcode: number;
  endcode: number;
  stackTop: number;
};

/** A live process's memory from its map; resident pages as the host counts them. */
function memory(q: ProcInfo): Memory | undefined {
  if (q.status !== undefined) return undefined;
  const p = q.process, exe = p.exePath;
  const m = { size: 0, rss: 0, file: 0, data: 0, stack: 0, exe: 0, lib: 0 };
  let startcode = 0, endcode = 0, stackTop = 0;
  for (const line of p.mappings().split("\n")) {
    const f = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (!f) continue;
    const lo = parseInt(f[1], 16), hi = parseInt(f[2], 16), perms = f[3], path = f[4];
    const len = hi - lo, named = path !== "" && !path.startsWith("[");
    const resident = residentBytes(p, lo, len);
    m.size += len;
    m.rss += resident;
    if (named) m.file += resident;
    if (path === "[stack]") {
      m.stack += len;
      stackTop = hi;
    } else if (perms[1] === "w" && perms[3] === "p") m.data += len;
    if (perms[2] === "x" && path === exe) {
      m.exe += len;
      if (!startcode) startcode = lo;
      endcode = hi;
    } else if (perms[2] === "x" && named) m.lib += len;
  }
  return { ...m, startcode, endcode, stackTop };
}

/** How much of the guest range the host has in memory (mincore), 0 if it is not user memory. */
function residentBytes(p: Process, lo: number, len: number): number {
  let host: bigint;
  try {
    host = p.mem.hostAddress(lo, len);
  } catch {
    return 0;
  }
  const pages = new Uint8Array(Math.ceil(len / PAGE));
  if (libc().mincore(host, BigInt(len), pages) !== 0) return 0;
  let n = 0;
  for (const b of pages) n += b & 1;
  return n * PAGE;
}
