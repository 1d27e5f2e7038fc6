/**
 * The `hermitux` command line: `hermitux run [options] BIN [ARGS…]`.
 * @module
 */
import { parseOptions, resolvePath as resolve } from "./args.ts";
import { Vm } from "../vm/vm.ts";
import { keepSpareMemory } from "../vm/memory.ts";
import type { BootOptions, ProcessStats } from "../vm/options.ts";
import { resolveRewrite } from "../vm/rewrite.ts";
import { ElfError } from "../loader/elf.ts";
import { KvmUnavailableError } from "../kvm/ioctls.ts";
import { detectPlatform, guestCpl } from "../kvm/platform.ts";
import { MEMORY, type MountSpec, MountTable, openBeneath } from "../vfs/mounts.ts";
import { hostFstat, hostSyscall } from "../syscalls/host.ts";
import { VERSION } from "../version.ts";
import { defaultHostCalls, hostCallsReason } from "../vm/exitless.ts";
import { describeProfile, hostProfile, knownHostProfile } from "../vm/hostprobe.ts";
import { kernelImage } from "../kernel/image.ts";
import { GUEST_SYSCALLS } from "../kernel/local.ts";
import { SYSCALL_NUMBERS } from "../syscalls/table.ts";
import { DEFAULT_MODULES } from "../syscalls/mod.ts";
import type { SyscallRegistry } from "../syscalls/registry.ts";
import { readAllowList, specializedRegistry } from "../syscalls/specialize.ts";
import { GrantError, resolveNetGrant } from "../net/policy.ts";
import { normalize } from "../vfs/path.ts";
import { defaultEtc } from "./etc.ts";

const USAGE = `hermitux ${VERSION}: run a Linux x86-64 executable in a KVM micro-VM

Usage:
  hermitux run [options] BIN [ARGS...]
  hermitux analyze [--json] [options] BIN   (see hermitux analyze --help)
  hermitux oci [global options] COMMAND ID  an OCI runtime, runc's command line
                                            (hermitux oci --help, docs/OCI.md)
  hermitux --help | --version

Options for run:
  --mem SIZE         guest RAM, e.g. 512M, 2G (default 1G; 2G at most): bounds what the
                     guest touches; its address space goes on above RAM (47 bits)
  --env K=V          set an environment variable in the guest (repeatable);
                     --env K passes the host's value of K
  --allow-env[=NAMES]
                     pass the host's environment, or only the variables in the
                     comma-separated NAMES (PREFIX* for a prefix); by default
                     the guest's environment is empty but for --env
  --allow-net[=HOST[:PORT],...]
                     let the guest use the network: every address, or only
                     those listed (names resolved now; [::1]:80 for IPv6); and
                     unix:PATH for a host Unix socket at or below guest PATH.
                     By default connect/sendto/bind/listen on IP sockets and
                     connect to a Unix socket the guest did not bind are EACCES
  --timeout SECONDS  stop the guest after SECONDS (exit status 124)
  --max-procs N      at most N guest processes at once (default 256); past it
                     fork fails with EAGAIN
  --max-threads N    at most N threads alive at once, all processes together
                     (RLIMIT_NPROC; default 1024); past it clone/fork: EAGAIN
  --max-fds N        at most N open fds per process (RLIMIT_NOFILE; default
                     1024); past it EMFILE
  --cpu-time SECONDS CPU time per process (RLIMIT_CPU): SIGXCPU after SECONDS,
                     SIGKILL a second later (default: no limit)
  --max-file-size SIZE
                     largest file a write may make, e.g. 10M (RLIMIT_FSIZE:
                     EFBIG and SIGXFSZ past it; default: no limit)
  --profile[=FILE.svg]
                     sample every thread's call stack (99 times a second) and
                     write a flame graph to FILE.svg (default hermitux-profile.svg)
                     and the folded stacks beside it (FILE.folded)
  --profile-hz N     sample N times a second instead (implies --profile)
  --trace            print every syscall to stderr, strace-style
  --stats            print boot time, exits and host calls to stderr at the end
                     (with several processes, a line for each and the totals)
  --verbose          also name the KVM platform and the guest's privilege level
  --mount HOST:GUEST[:ro|rw]
                     show host directory HOST at GUEST (read-write unless :ro; repeatable)
  --memfs GUEST      an empty in-memory file system at GUEST, gone when the run ends
                     (repeatable)
  --workdir DIR      the guest's working directory (default: the current directory)
  --allow-syscalls FILE
                     serve only the syscalls in FILE (hermitux analyze --json
                     output, or a JSON list of names); others get ENOSYS
  --specialize       the same with the set analyze finds for BIN, computed now
  --strict           with either: end the run (SIGSYS, status 159) at the first
                     syscall outside the set
  --rewrite=auto|stub|off|lazy|static
                     turn syscall instructions into jumps into the guest
                     kernel (a trap costs 17-34 us on kvm_pvm, a rewritten
                     call ~0.1 us). stub: a mov $NR,%eax; syscall that runs
                     becomes a jmp to a stub once its mov is proved a whole
                     instruction (page 0 stays unmapped: NULL reads fault).
                     lazy: each syscall that runs becomes call *%rax into a
                     trampoline at page 0; static: all syscalls found in the
                     program, its loader and each library as it is mapped,
                     before they run (with either, NULL reads do not fault).
                     auto (default): stub where this host's syscall trap,
                     measured once and cached, costs 3 us or more, else off;
                     HERMITUX_REWRITE sets the default (docs/REWRITING.md)
  --host-calls=auto|exit|exitless
                     how host calls reach the host: a VM exit each, or served by
                     this process's main thread while the guest spins, with no
                     exit (vCPUs then run on threads of their own); auto: by
                     exit until the program has made 64, then exitless.
                     Default, from this host's exit cost (measured once and
                     cached): exit where it is under 20 us or with 1 CPU,
                     else auto with 2 or 3 CPUs and exitless with 4 or more;
                     HERMITUX_HOST_CALLS sets it (docs/TRANSPORT.md).
  --gdb [HOST:]PORT  serve gdb's remote protocol on HOST:PORT (127.0.0.1 unless
                     given; port 0: any free one, printed): the guest stops
                     before its first instruction until gdb connects
                     (target remote :PORT); docs/GDB.md
  --no-default-mounts
                     mount nothing but --mount. By default the current directory
                     is mounted READ-WRITE at its own path (the guest may change
                     or delete what is there), /usr /lib /lib64 /bin read-only,
                     and an /etc with only the host files programs need and no
                     secrets (SECURITY.md; --mount /etc:/etc:ro gives the whole
                     host /etc), and an empty private /dev/shm (in memory)

The guest's stdout, stderr and exit status pass through unchanged; a guest
killed by signal N exits with 128+N, as a shell shows it.`;

/**
 * The registry for --allow-syscalls FILE or --specialize (analysis of BIN
 * through the mounts), and a one-line report of what it removes.
 */
async function specialization(
  values: { "allow-syscalls"?: string; specialize?: boolean; strict?: boolean },
  path: string,
  mounts: MountSpec[],
  cwd: string,
): Promise<{ registry: SyscallRegistry; summary: string }> {
  let allowed: number[];
  let source: string;
  if (values["allow-syscalls"]) {
    const file = resolve(cwd, values["allow-syscalls"]);
    allowed = readAllowList(Deno.readTextFileSync(file));
    source = file;
  } else {
    const { analyzeBinary } = await import("../analysis/analyze.ts");
    const { MountTable } = await import("../vfs/mounts.ts");
    const table = new MountTable(mounts);
    try {
      const a = analyzeBinary(path, { mounts: table, cwd });
      allowed = a.numbers;
      source = `analysis of ${path}`;
      if (!a.complete) {
        console.error(
          `hermitux: analysis incomplete (${a.unresolved.length} unresolved sites, ` +
            `${a.missing.length} missing libraries): their syscalls may be denied`,
        );
      }
    } finally {
      table.close();
    }
  }
  const { registry, report: r } = specializedRegistry(DEFAULT_MODULES, allowed, {
    strict: values.strict,
  });
  // Loaded here, as the analysis is: iced-x86 is needed only for specialization.
  const { kernelReach } = await import("../analysis/kernel.ts");
  const kernel = await kernelImage();
  const map = await Deno.readTextFile(new URL("../kernel/kernel.map", import.meta.url));
  const local = Object.keys(GUEST_SYSCALLS).filter((n) =>
    allowed.includes(SYSCALL_NUMBERS.get(n)!)
  );
  const code = kernelReach(kernel.bytes, map, local);
  const summary = `hermitux: specialized by ${source}: ${r.allowedServable} of the ` +
    `${r.servable} syscalls hermitux serves stay reachable (${r.allowed} in the set); modules ${r.modules.loaded.length} of ${r.modules.total} ` +
    `(${r.modules.loaded.join(", ")}); guest-kernel syscalls ${r.guestKernel.reachable} of ` +
    `${r.guestKernel.total}, code ${code.reachable} of ${code.total} bytes`;
  return { registry, summary };
}

/** Parses "512M", "2G", "1048576" into bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+)([KMG]?)i?B?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size '${s}' (use e.g. 512M or 2G)`);
  const unit = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase()]!;
  return Number(m[1]) * unit;
}

/** Options that take a value (the next argument unless written --opt=value). */
/** Where `--profile` with no file writes, in the caller's directory. */
const DEFAULT_PROFILE = "hermitux-profile.svg";

const VALUE_OPTIONS = new Set([
  "mem",
  "env",
  "timeout",
  "max-procs",
  "max-threads",
  "max-fds",
  "cpu-time",
  "max-file-size",
  "mount",
  "memfs",
  "workdir",
  "rewrite",
  "host-calls",
  "allow-syscalls",
  "profile-hz",
  "gdb",
]);

/** The system directories the CLI shows read-only by default (and an /etc: etc.ts). */
const SYSTEM_DIRS = ["/usr", "/lib", "/lib64", "/bin"];

/** Parses --mount HOST:GUEST[:ro|rw] (HOST relative to `cwd`). */
export function parseMount(spec: string, cwd: string): MountSpec {
  const parts = spec.split(":");
  let readOnly = false;
  if (parts.length === 3 && (parts[2] === "ro" || parts[2] === "rw")) {
    readOnly = parts.pop() === "ro";
  }
  if (parts.length !== 2 || !parts[0] || !parts[1].startsWith("/")) {
    throw new Error(`bad --mount '${spec}' (use HOST:GUEST[:ro|rw], GUEST absolute)`);
  }
  return { host: resolve(cwd, parts[0]), guest: parts[1], readOnly };
}

/**
 * The CLI's mounts: the defaults (unless disabled), then --mount in order.
 * The default /etc (etc.ts) has `resolv.conf` when `etc.net`, and the
 * names the network grant resolved in `hosts`; a --mount at /etc replaces it.
 */
export function cliMounts(
  specs: string[],
  defaults: boolean,
  cwd: string,
  etc: { net: boolean; hosts?: [string, string][] } = { net: false },
): MountSpec[] {
  const out: MountSpec[] = [];
  const given = specs.map((s) => parseMount(s, cwd));
  if (defaults) {
    for (const dir of SYSTEM_DIRS) {
      try {
        if (Deno.statSync(dir).isDirectory) out.push({ host: dir, guest: dir, readOnly: true });
      } catch { /* not on this host */ }
    }
    if (!given.some((m) => normalize(m.guest) === "/etc")) out.push(...defaultEtc(etc));
    out.push({ host: cwd, guest: cwd, readOnly: false });
    // As every Linux system (and a container) has: POSIX shared memory and
    // named semaphores (sem_open, multiprocessing) live there. Private to the run.
    out.push({ host: MEMORY, guest: "/dev/shm", readOnly: false });
  }
  return [...out, ...given];
}

/**
 * Whether `path` is an executable file: through the guest's mounts when one
 * of them holds it (as execve finds it), else on the host.
 */
function executable(path: string, mounts: MountTable): boolean {
  try {
    if (!mounts.mountFor(path)) {
      const st = Deno.statSync(path);
      return st.isFile && ((st.mode ?? 0) & 0o111) !== 0;
    }
    const r = mounts.resolve(path, "/");
    if (!r.mount) return false;
    const fd = openBeneath(r.mount.rootFd, r.rel, 0o10000000); // O_PATH
    const st = hostFstat(fd);
    hostSyscall(3, fd);
    return typeof st !== "number" && (st.mode & 0o170000) === 0o100000 && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * A BIN without a slash is looked up in PATH, as a shell does, each
 * directory through the guest's mounts when one holds it (then in the
 * current directory, for compatibility with `hermitux run prog`).
 * `searchPath` is the PATH to search (default: this process's).
 */
export function findInPath(
  bin: string,
  cwd: string,
  mounts: MountSpec[] = [],
  searchPath: string = Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
): string {
  const table = new MountTable(mounts.filter((m) => m.host !== MEMORY));
  try {
    for (const dir of searchPath.split(":")) {
      if (!dir) continue;
      const candidate = resolve(cwd, dir, bin);
      if (executable(candidate, table)) return candidate;
    }
  } finally {
    table.close();
  }
  return resolve(cwd, bin);
}

function fail(message: string, status = 2): number {
  console.error(message);
  return status;
}

/** How {@linkcode main} is run. */
export interface MainOptions {
  /**
   * The process ends after this run (cli.ts): the last VM's RAM and machine
   * are freed, not cleared and kept for a next VM, which would only delay
   * the end. Processes of the run still pass theirs on to each other.
   */
  exits?: boolean;
  /** Where the CLI's code came from (cli.ts: the bundle or the sources), for `--verbose`. */
  code?: string;
}

/** Runs the CLI with `args`; resolves to the process exit status. */
export async function main(
  args: string[],
  cwd: string = Deno.cwd(),
  opts: MainOptions = {},
): Promise<number> {
  if (args[0] === "--version" || args[0] === "-V") {
    console.log(`hermitux ${VERSION}`);
    return 0;
  }
  if (args.length === 0 || args[0] === "--help" || args[0] === "-h" || args[0] === "help") {
    console.log(USAGE);
    return args.length === 0 ? 2 : 0;
  }
  if (args[0] === "analyze") {
    // Loaded on demand: the disassembler is not needed to run a program.
    const { analyzeCommand } = await import("./analyze.ts");
    return analyzeCommand(args.slice(1), cwd);
  }
  if (args[0] === "oci") {
    // The OCI runtime (bin/hermitux-oci): loaded on demand as analyze is.
    const { ociMain } = await import("../oci/cli.ts");
    return ociMain(args.slice(1), cwd);
  }
  if (args[0] !== "run") return fail(`hermitux: unknown command '${args[0]}'\n\n${USAGE}`);
  // Options end at BIN: everything after it belongs to the guest.
  const rest = args.slice(1);
  let binAt = 0;
  while (binAt < rest.length && rest[binAt].startsWith("-") && rest[binAt] !== "--") {
    const name = rest[binAt].replace(/^--?/, "");
    binAt += VALUE_OPTIONS.has(name) ? 2 : 1;
  }
  if (rest[binAt] === "--") rest.splice(binAt, 1);
  // --allow-net and --allow-env take a value only after "=" (as Deno's).
  const options: string[] = [];
  const grants: { net?: boolean | string[]; env?: boolean | string[] } = {};
  let profileFile: string | undefined; // --profile[=FILE.svg], a value only after "=" too
  for (let i = 0; i < binAt; i++) {
    const a = rest[i], m = /^--allow-(net|env)(?:=(.*))?$/.exec(a);
    const prof = /^--profile(?:=(.*))?$/.exec(a);
    if (prof) {
      profileFile = prof[1] || DEFAULT_PROFILE;
      continue;
    }
    if (!m) {
      options.push(a);
      if (VALUE_OPTIONS.has(a.replace(/^--?/, "")) && i + 1 < binAt) options.push(rest[++i]);
      continue;
    }
    const kind = m[1] as "net" | "env";
    if (m[2] === undefined) grants[kind] = true;
    else if (grants[kind] !== true) {
      grants[kind] = [...(grants[kind] || []), ...m[2].split(",").filter((x) => x)];
    }
  }
  let parsed;
  try {
    parsed = parseOptions(options, {
      mem: { type: "string" },
      env: { type: "string", multiple: true },
      timeout: { type: "string" },
      "max-procs": { type: "string" },
      "max-threads": { type: "string" },
      "max-fds": { type: "string" },
      "cpu-time": { type: "string" },
      "max-file-size": { type: "string" },
      trace: { type: "boolean" },
      stats: { type: "boolean" },
      verbose: { type: "boolean", short: "v" },
      mount: { type: "string", multiple: true },
      memfs: { type: "string", multiple: true },
      workdir: { type: "string" },
      "no-default-mounts": { type: "boolean" },
      rewrite: { type: "string" },
      "host-calls": { type: "string" },
      "allow-syscalls": { type: "string" },
      specialize: { type: "boolean" },
      strict: { type: "boolean" },
      "profile-hz": { type: "string" },
      gdb: { type: "string" },
      help: { type: "boolean", short: "h" },
    });
  } catch (e) {
    return fail(`hermitux: ${(e as Error).message}\n\n${USAGE}`);
  }
  const { values } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (binAt >= rest.length) return fail(`hermitux run: missing BIN\n\n${USAGE}`);
  const [bin, ...guestArgs] = rest.slice(binAt);
  const env: Record<string, string> = {};
  for (const e of values.env ?? []) {
    const eq = e.indexOf("=");
    if (eq > 0) env[e.slice(0, eq)] = e.slice(eq + 1);
    else if (eq < 0 && Deno.env.get(e) !== undefined) env[e] = Deno.env.get(e)!;
    else if (eq === 0) return fail(`hermitux: bad --env '${e}' (use K=V or K)`);
  }
  // Names in --allow-net are resolved once, here: the grant and the guest's /etc/hosts agree.
  let resolved: Awaited<ReturnType<typeof resolveNetGrant>> | undefined;
  try {
    if (Array.isArray(grants.net)) resolved = await resolveNetGrant(grants.net);
  } catch (e) {
    return fail((e as Error).message);
  }
  let memory: number | undefined, timeout: number | undefined, mounts: MountSpec[];
  let maxProcesses: number | undefined, hz: number | undefined;
  const limits: { maxThreads?: number; maxFds?: number; cpuTime?: number; maxFileSize?: number } =
    {};
  try {
    mounts = cliMounts(values.mount ?? [], !values["no-default-mounts"], cwd, {
      net: grants.net !== undefined,
      hosts: resolved?.hosts,
    });
    for (const guest of values.memfs ?? []) {
      if (!guest.startsWith("/")) {
        throw new Error(`bad --memfs '${guest}' (GUEST must be absolute)`);
      }
      mounts.push({ host: MEMORY, guest, readOnly: false });
    }
    if (values.mem) memory = parseSize(values.mem);
    if (values["max-procs"]) {
      maxProcesses = Number(values["max-procs"]);
      if (!(Number.isInteger(maxProcesses) && maxProcesses >= 1)) {
        throw new Error(`bad --max-procs '${values["max-procs"]}'`);
      }
    }
    const count = (name: "max-threads" | "max-fds" | "cpu-time", least: number) => {
      const v = values[name];
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < least) {
        throw new Error(`bad --${name} '${v}'`);
      }
      return n;
    };
    limits.maxThreads = count("max-threads", 1);
    limits.maxFds = count("max-fds", 3);
    limits.cpuTime = count("cpu-time", 1);
    if (values["max-file-size"] !== undefined) {
      limits.maxFileSize = parseSize(values["max-file-size"]);
    }
    if (values.timeout) {
      timeout = Number(values.timeout);
      if (!(timeout > 0)) throw new Error(`bad --timeout '${values.timeout}'`);
    }
    if (values["profile-hz"] !== undefined) {
      hz = Number(values["profile-hz"]);
      if (!/^\d+$/.test(values["profile-hz"]) || hz < 1 || hz > 10_000) {
        throw new Error(`bad --profile-hz '${values["profile-hz"]}' (1 to 10000)`);
      }
      profileFile ??= DEFAULT_PROFILE;
    }
  } catch (e) {
    return fail(`hermitux: ${(e as Error).message}`);
  }
  const rewrite = values.rewrite ?? (Deno.env.get("HERMITUX_REWRITE") || "auto");
  if (!["auto", "stub", "off", "lazy", "static"].includes(rewrite)) {
    return fail(`hermitux: bad --rewrite '${rewrite}' (use auto, stub, off, lazy or static)`);
  }
  const hostCalls = values["host-calls"] ?? (Deno.env.get("HERMITUX_HOST_CALLS") || undefined); // empty: unset
  if (
    hostCalls !== undefined && hostCalls !== "exit" && hostCalls !== "exitless" &&
    hostCalls !== "auto"
  ) {
    return fail(`hermitux: bad --host-calls '${hostCalls}' (use auto, exit or exitless)`);
  }
  let gdb: string | undefined;
  if (values.gdb !== undefined) {
    try {
      // Loaded only when asked for: a plain run need not pay for the module.
      const { parseListenAddress } = await import("../gdb/socket.ts");
      const at = parseListenAddress(values.gdb);
      gdb = `${at.host ?? "127.0.0.1"}:${at.port}`;
    } catch (e) {
      return fail(`hermitux: ${(e as Error).message}`);
    }
  }
  // Found as the guest would: through its mounts (boot reads it there too).
  const path = bin.includes("/") ? resolve(cwd, bin) : findInPath(bin, cwd, mounts);
  let registry: SyscallRegistry | undefined;
  if (values["allow-syscalls"] || values.specialize) {
    try {
      const s = await specialization(values, path, mounts, cwd);
      registry = s.registry;
      if (values.verbose || values.stats) console.error(s.summary);
    } catch (e) {
      return fail(`hermitux: ${(e as Error).message.replace(/^hermitux: /, "")}`, 2);
    }
  } else if (values.strict) {
    return fail("hermitux: --strict needs --allow-syscalls or --specialize");
  }
  const platform = detectPlatform();
  if (values.verbose) {
    // The measurement boot() will use (measured now if this host has none cached).
    if (!hostCalls || rewrite === "auto") await hostProfile();
    const p = knownHostProfile(platform), measured = p ? `${describeProfile(p)}: ` : "";
    const rw = resolveRewrite(rewrite as BootOptions["rewrite"], platform, p);
    const why = rewrite === "auto"
      ? (hostCalls ? measured : "") + rw.why
      : values.rewrite
      ? "as asked"
      : "set by HERMITUX_REWRITE";
    console.error(
      `hermitux: platform ${platform} (guest at CPL ${guestCpl(platform)}), ` +
        `host calls ${hostCalls ?? defaultHostCalls(platform, undefined, p)} (${
          hostCalls ? "as asked" : measured + hostCallsReason(platform, undefined, p)
        }), rewrite ${rw.mode} (${why})`,
    );
    if (opts.code) console.error(`hermitux: code from ${opts.code}`);
  }
  try {
    const vm = await Vm.create({
      path,
      argv0: bin,
      args: guestArgs,
      env,
      allowEnv: grants.env,
      allowNet: resolved?.entries ?? grants.net,
      memory,
      timeout,
      maxProcesses,
      ...limits,
      trace: values.trace,
      platform,
      rewrite: rewrite as BootOptions["rewrite"],
      hostCalls,
      registry,
      mounts,
      gdb,
      cwd: values.workdir ? resolve(cwd, values.workdir) : cwd,
      profile: profileFile ? { hz } : undefined,
    });
    let result;
    try {
      result = vm.run();
    } finally {
      if (opts.exits) keepSpareMemory(false);
      vm.dispose();
    }
    if (profileFile && result.profile) {
      const { writeProfile } = await import("./profile.ts");
      console.error(writeProfile(result.profile, resolve(cwd, profileFile), bin));
    }
    if (values.stats || values.verbose) {
      console.error(`hermitux: stats ${JSON.stringify(result.stats)}`);
      if (result.perProcess.length > 1) console.error(processLines(result.perProcess));
    }
    return result.timedOut ? 124 : result.status;
  } catch (e) {
    if (e instanceof ElfError) return fail(`hermitux: ${e.message}`, 126);
    if (e instanceof GrantError) return fail(e.message, 2);
    if (e instanceof KvmUnavailableError) return fail(e.message, 125);
    if (e instanceof Error && e.message.startsWith("hermitux:")) {
      return fail(e.message, /no such file/.test(e.message) ? 127 : 126);
    }
    if (e instanceof RangeError) return fail(`hermitux: ${e.message}`, 2);
    // A bug in hermitux itself: say so plainly, with the stack for the report.
    const detail = e instanceof Error ? e.stack ?? e.message : String(e);
    return fail(`hermitux: internal error (please report): ${detail}`, 70);
  }
}

/** --stats with several processes: a line per process (by pid), then the totals. */
function processLines(procs: ProcessStats[]): string {
  const line = (p: ProcessStats) =>
    `hermitux: pid ${p.pid} (ppid ${p.ppid}) status ${p.status}: ${p.images} image${
      p.images > 1 ? "s" : ""
    }, ${
      p.runMs.toFixed(1)
    } ms, ${p.exits} exits, ${p.hostCalls} host calls (${p.exitless} exitless)${
      p.onLoan ? ", vforked on its parent's machine" : ""
    }: ${p.command}`;
  const sum = (k: "runMs" | "exits" | "hostCalls" | "exitless") =>
    procs.reduce((n, p) => n + p[k], 0);
  return [
    ...procs.map(line),
    `hermitux: ${procs.length} processes: ${sum("runMs").toFixed(1)} ms, ${sum("exits")} exits, ${
      sum("hostCalls")
    } host calls (${sum("exitless")} exitless)`,
  ].join("\n");
}
