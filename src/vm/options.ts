/**
 * What a VM is booted with ({@linkcode BootOptions}) and what a run gives
 * back ({@linkcode RunResult}, {@linkcode RunStats}).
 * @module
 */
import type { SyscallRegistry } from "../syscalls/registry.ts";
import type { MountSpec } from "../vfs/mounts.ts";
import type { Platform } from "../kvm/platform.ts";
import type { CrashReport } from "./fault.ts";
import type { HostCalls } from "./exitless.ts";
import type { Profile, ProfileOptions } from "../profile/profile.ts";
import type { StdioInput, StdioOutput } from "./stdio.ts";
import type { SignalSource } from "./hostsignals.ts";

/** How to boot a program. */
export interface BootOptions {
  /**
   * The executable: an absolute path that one of `mounts` holds names the
   * guest's file (found through the mounts, as execve finds one); any other
   * path is a host path (a program the guest need not see).
   */
  path: string;
  /** Arguments after argv[0]. */
  args?: string[];
  /** argv[0]; defaults to `path`. */
  argv0?: string;
  /**
   * The guest's environment, besides what `allowEnv` passes (a name in
   * both takes this value).
   */
  env?: Record<string, string>;
  /**
   * Host environment variables the guest gets: `true` all of them, a list
   * those named (`"AWS_*"` for a prefix). Default: none, as in Deno
   * (the host's environment often holds secrets).
   */
  allowEnv?: boolean | readonly string[];
  /**
   * The network the guest may use, as Deno's `--allow-net`: `true` every
   * IP destination and local address; a list of `"HOST[:PORT]"` (names
   * resolved at boot, `"[::1]:80"` for IPv6) and `"unix:/PATH"` (host Unix
   * sockets at or below that guest path, which the guest did not bind
   * itself). Default: none: connect, sendto, sendmsg, bind and listen on
   * IP sockets are EACCES, and each refusal is named once through
   * `onDiagnostic`. See SECURITY.md.
   */
  allowNet?: boolean | readonly string[];
  /**
   * RLIMIT_NOFILE (soft and hard): at most this many fds per process
   * (default 1024); past it, EMFILE.
   */
  maxFds?: number;
  /**
   * RLIMIT_NPROC: at most this many threads alive at once in the run, all
   * processes together (default 1024); past it clone and fork are EAGAIN.
   */
  maxThreads?: number;
  /**
   * RLIMIT_CPU, in seconds (default: none): each process gets SIGXCPU when
   * it has used this much CPU time, and SIGKILL a second later.
   */
  cpuTime?: number;
  /**
   * RLIMIT_FSIZE, in bytes (default: none): a write past it is cut short,
   * or EFBIG with SIGXFSZ when nothing fits.
   */
  maxFileSize?: number;
  /** Guest RAM in bytes, a multiple of 2 MiB, at most 2 GiB (default 1 GiB). */
  memory?: number;
  /** Stop the guest after this many seconds. */
  timeout?: number;
  /** Trace every syscall, strace-style: `true` writes to stderr. */
  trace?: boolean | ((line: string) => void);
  /** The syscall handlers (default: `defaultRegistry()`). */
  registry?: SyscallRegistry;
  /** Host fds that become the guest's 0, 1 and 2 (default 0, 1, 2); the three below override. */
  stdio?: [number, number, number];
  /**
   * The guest's stdin, as `Deno.Command` has it: `"inherit"` (default),
   * `"null"`, a host fd, or the bytes it reads, then end of file.
   */
  stdin?: StdioInput;
  /**
   * The guest's stdout: `"inherit"` (default), `"null"`, a host fd, or
   * `"piped"`: collected into `RunResult.stdout` (a memfd: the guest
   * writes a regular file that never fills, so it never waits for a reader).
   */
  stdout?: StdioOutput;
  /** The guest's stderr, as `stdout` (`RunResult.stderr` when piped). */
  stderr?: StdioOutput;
  /** Where diagnostics go (unsupported syscalls, crash reports); default stderr. */
  onDiagnostic?: (message: string) => void;
  /** The KVM device (default `/dev/kvm`). */
  kvmDevice?: string;
  /**
   * Syscall rewriting (docs/REWRITING.md). `"stub"`: a `mov $NR, %eax;
   * syscall` (b8 imm32 0f 05, the usual libc wrapper) that traps becomes
   * a jmp to a stub into the guest kernel and a `ud2` once the host has
   * proved from the code's unwind tables or symbols that the mov is a whole
   * instruction; other sites keep trapping; page 0 stays unmapped, so a
   * NULL read faults as on Linux. `"lazy"` turns each `syscall` into `call
   * *%rax` the first time it runs, entering through a trampoline at page 0;
   * `"static"` does the same to every `syscall` a linear sweep finds in the
   * executable and its interpreter before boot, and in each library as ld.so
   * maps its text; with either, page 0 is mapped, so a NULL read no longer
   * faults. `"off"` leaves code alone. `"auto"` (default): `"stub"` where a
   * trap costs microseconds (kvm_pvm), `"off"` where it is cheap (hardware
   * KVM), as measured on this host once and cached (`hostProfile`).
   */
  rewrite?: "auto" | "off" | "stub" | "lazy" | "static";
  /**
   * How host calls reach the host: `"exitless"` (vCPUs run on their own
   * host threads; while the main thread polls, most calls are served with
   * no VM exit) or `"exit"` (a VM exit each; vCPU 0 runs on the calling
   * thread). Default: `defaultHostCalls`, from this host's measured costs
   * (`hostProfile`).
   */
  hostCalls?: HostCalls;
  /** The kind of KVM (default: detected). */
  platform?: Platform;
  /** What the guest sees of the host's files (default: nothing). */
  mounts?: MountSpec[];
  /** The guest's host name, uname's nodename (default "hermitux"). */
  hostname?: string;
  /** The guest's working directory (default "/"). */
  cwd?: string;
  /**
   * Serve gdb's remote protocol (`target remote HOST:PORT`): `"[HOST:]PORT"`
   * or `{ host, port }`, on 127.0.0.1 unless a host is given (port 0 picks a
   * free one; the port is said through `onDiagnostic`). The guest stops
   * before its first instruction until gdb connects. Unless asked
   * otherwise, host calls go by exit and syscall sites are not rewritten
   * (docs/GDB.md).
   */
  gdb?: string | { host?: string; port: number };
  /**
   * At most this many guest processes at once, zombies included (default
   * 256): past it fork fails with EAGAIN, as under RLIMIT_NPROC.
   */
  maxProcesses?: number;
  /**
   * Samples every vCPU's call stack `hz` times a second (default 99) into
   * `RunResult.profile` (folded stacks; `flameGraph` draws them). `true`:
   * the defaults. See docs/PROFILING.md.
   */
  profile?: boolean | ProfileOptions;
  /**
   * Signals from outside the run, raised in its first process as a `kill`
   * from outside the guest (`si_pid` 0): looked at every 50 ms while it
   * runs. `HostSignals` (src/vm/hostsignals.ts) gives those sent to this
   * host process (what the OCI runtime uses).
   */
  signals?: SignalSource;
  /**
   * Stops the run when aborted: `boot()` then runs it in slices with the
   * event loop let run between them (Vm.runAsync), and an abort kills the
   * first process as SIGKILL from outside would (status 137).
   */
  signal?: AbortSignal;
}

/** Counters and timings of a run. */
export interface RunStats {
  /** The kind of KVM that ran the guest. */
  platform: Platform;
  /** From `Vm.create` to the first guest instruction, in ms. */
  bootMs: number;
  /** Guest execution, first KVM_RUN to the end, in ms. */
  runMs: number;
  /** Exits from KVM_RUN. */
  exits: number;
  /** Syscalls served by the host. */
  hostCalls: number;
  /** Host calls served exitless (no VM exit), of any kind. */
  exitless: number;
  /**
   * Of those, the plain calls (read, write and kin on a plain host fd)
   * served in C with no JavaScript (src/vm/plain.ts).
   */
  plainCalls: number;
  /** Host-served syscalls by name. */
  syscalls: Record<string, number>;
  /**
   * Time in the host's syscall handlers by name, in ms (not counting the
   * exits). Past a name's first 64 calls, every 16th is timed and counts 16
   * times: reading the clock costs about as much as a fast call.
   */
  syscallMs: Record<string, number>;
  /** From `Vm.create` to the program's segments (and interpreter) in memory, in ms. */
  loadMs: number;
  /**
   * KVM's own counters for the run (`KVM_GET_STATS_FD`; empty before
   * Linux 5.14): the VM's, and every vCPU's summed. Among them `exits`
   * (all exits, most handled inside KVM), `pf_fixed` (page faults KVM
   * fixed: on kvm_pvm, shadow page-table fills), `insn_emulation`
   * (emulated instructions, e.g. `cpuid` on kvm_pvm), `mmio_exits`,
   * `pages_4k` and `pages_2m`. Counters that stayed zero are left out.
   */
  kvm: Record<string, number>;
  /**
   * Syscall rewriting: the mode used (`auto` resolved) and the sites it
   * rewrote. With `"stub"` also: `traps`, syscalls that still trapped (a
   * site's first run, or a site left as it was); `asked`, sites the guest
   * kernel asked the host about, and `askedMs`, the host's time deciding;
   * `other`, trapped sites it could not ask about (the instruction before
   * would cross into another page); and `ud2`, jumps onto a rewritten
   * site's `ud2` served as its syscall.
   */
  rewrite?: {
    mode: string;
    sites: number;
    traps?: number;
    asked?: number;
    askedMs?: number;
    other?: number;
    ud2?: number;
  };
}

/** One guest process of a run, all its images (execve) together. */
export interface ProcessStats {
  /** Its pid. */
  pid: number;
  /** Its parent's pid when it ended (1 once orphaned). */
  ppid: number;
  /** Its last image's command line, shortened. */
  command: string;
  /** How it ended, as a shell shows it (killed with the run: 137). */
  status: number;
  /** Its images: 1, and one more for each execve. */
  images: number;
  /** Guest execution, summed over its images, in ms. */
  runMs: number;
  /** Exits from KVM_RUN. */
  exits: number;
  /** Syscalls served by the host. */
  hostCalls: number;
  /** Host calls served exitless. */
  exitless: number;
  /** Host-served syscalls by name. */
  syscalls: Record<string, number>;
  /** A vfork child that ran on its parent's machine until execve or _exit (no copy of memory). */
  onLoan?: boolean;
}

/** How a run ended. */
export interface RunResult {
  /** Exit status as a shell shows it: the code, or 128 + signal. */
  status: number;
  /** What the guest wrote to stdout, when `BootOptions.stdout` is `"piped"`. */
  stdout?: Uint8Array;
  /** What the guest wrote to stderr, when `BootOptions.stderr` is `"piped"`. */
  stderr?: Uint8Array;
  /** The stacks sampled, in a profiled run (`BootOptions.profile`). */
  profile?: Profile;
  /** The guest's exit code, when it exited. */
  exitCode?: number;
  /** The signal that killed the guest, if one did. */
  signal?: number;
  /** Why a crashed guest died. */
  crash?: CrashReport;
  /** Whether `timeout` stopped it. */
  timedOut: boolean;
  /** How many guest processes ran (1 without fork; an execve does not count as another). */
  processes: number;
  /** Counters of the first process's last image. */
  stats: RunStats;
  /** Every process of the run by pid, the first one first, with its counters. */
  perProcess: ProcessStats[];
}
