/**
 * The `hermitux` command line: `hermitux run [options] BIN [ARGS…]`.
 * @module
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { boot } from "../vm/vm.ts";
import type { ProcessStats } from "../vm/options.ts";
import { ElfError } from "../loader/elf.ts";
import { KvmUnavailableError } from "../kvm/ioctls.ts";
import { detectPlatform, guestCpl } from "../kvm/platform.ts";
import { MEMORY, type MountSpec, MountTable, openBeneath } from "../vfs/mounts.ts";
import { hostFstat, hostSyscall } from "../syscalls/host.ts";
import { VERSION } from "../version.ts";
import { defaultHostCalls } from "../vm/exitless.ts";
import { kernelImage } from "../kernel/image.ts";
import { GUEST_SYSCALLS } from "../kernel/local.ts";
import { SYSCALL_NUMBERS } from "../syscalls/table.ts";
import { DEFAULT_MODULES } from "../syscalls/mod.ts";
import type { SyscallRegistry } from "../syscalls/registry.ts";
import { readAllowList, specializedRegistry } from "../syscalls/specialize.ts";

const USAGE = `hermitux ${VERSION}: run a Linux x86-64 executable in a KVM micro-VM

Usage:
  hermitux run [options] BIN [ARGS...]
  hermitux analyze [--json] [options] BIN   (see hermitux analyze --help)
  hermitux --help | --version

Options for run:
  --mem SIZE         guest memory, e.g. 512M, 2G (default 1G; 2G at most)
  --env K=V          set an environment variable in the guest (repeatable);
                     --env K passes the host's value of K. Nothing else is passed.
  --timeout SECONDS  stop the guest after SECONDS (exit status 124)
  --max-procs N      at most N guest processes at once (default 256); past it
                     fork fails with EAGAIN
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
  --rewrite=off|static|lazy
                     turn syscall instructions into calls into the guest kernel:
                     each the first time it runs (lazy), or all those found in
                     the program and its loader before boot and in each library
                     as it is mapped (static); default off. Page 0 is then mapped, so NULL reads do not fault.
                     HERMITUX_REWRITE sets the default.
  --host-calls=exit|exitless
                     how host calls reach the host: a VM exit each, or served by
                     this process's main thread while the guest spins, with no
                     exit (vCPUs then run on threads of their own). Default:
                     exitless on kvm_pvm with 4 or more CPUs, else exit;
                     HERMITUX_HOST_CALLS sets it.
  --no-default-mounts
                     mount nothing but --mount: by default the current directory is
                     mounted read-write at its own path, /usr /lib /lib64 /etc /bin
                     read-only, and an empty private /dev/shm (in memory)

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
const VALUE_OPTIONS = new Set([
  "mem",
  "env",
  "timeout",
  "max-procs",
  "mount",
  "memfs",
  "workdir",
  "rewrite",
  "host-calls",
  "allow-syscalls",
]);

/** The system directories the CLI shows read-only by default. */
const SYSTEM_DIRS = ["/usr", "/lib", "/lib64", "/etc", "/bin"];

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

/** The CLI's mounts: the defaults (unless disabled), then --mount in order. */
export function cliMounts(specs: string[], defaults: boolean, cwd: string): MountSpec[] {
  const out: MountSpec[] = [];
  if (defaults) {
    for (const dir of SYSTEM_DIRS) {
      try {
        if (Deno.statSync(dir).isDirectory) out.push({ host: dir, guest: dir, readOnly: true });
      } catch { /* not on this host */ }
    }
    out.push({ host: cwd, guest: cwd, readOnly: false });
    // As every Linux system (and a container) has: POSIX shared memory and
    // named semaphores (sem_open, multiprocessing) live there. Private to the run.
    out.push({ host: MEMORY, guest: "/dev/shm", readOnly: false });
  }
  return [...out, ...specs.map((s) => parseMount(s, cwd))];
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
 */
export function findInPath(bin: string, cwd: string, mounts: MountSpec[] = []): string {
  const table = new MountTable(mounts.filter((m) => m.host !== MEMORY));
  try {
    for (const dir of (Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin").split(":")) {
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

/** Runs the CLI with `args`; resolves to the process exit status. */
export async function main(args: string[], cwd: string = Deno.cwd()): Promise<number> {
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
  if (args[0] !== "run") return fail(`hermitux: unknown command '${args[0]}'\n\n${USAGE}`);
  // Options end at BIN: everything after it belongs to the guest.
  const rest = args.slice(1);
  let binAt = 0;
  while (binAt < rest.length && rest[binAt].startsWith("-") && rest[binAt] !== "--") {
    const name = rest[binAt].replace(/^--?/, "");
    binAt += VALUE_OPTIONS.has(name) ? 2 : 1;
  }
  if (rest[binAt] === "--") rest.splice(binAt, 1);
  let parsed;
  try {
    parsed = parseArgs({
      args: rest.slice(0, binAt),
      allowPositionals: false,
      strict: true,
      options: {
        mem: { type: "string" },
        env: { type: "string", multiple: true },
        timeout: { type: "string" },
        "max-procs": { type: "string" },
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
        help: { type: "boolean", short: "h" },
      },
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
  let memory: number | undefined, timeout: number | undefined, mounts: MountSpec[];
  let maxProcesses: number | undefined;
  try {
    mounts = cliMounts(values.mount ?? [], !values["no-default-mounts"], cwd);
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
    if (values.timeout) {
      timeout = Number(values.timeout);
      if (!(timeout > 0)) throw new Error(`bad --timeout '${values.timeout}'`);
    }
  } catch (e) {
    return fail(`hermitux: ${(e as Error).message}`);
  }
  const rewrite = values.rewrite ?? (Deno.env.get("HERMITUX_REWRITE") || "off");
  if (rewrite !== "off" && rewrite !== "lazy" && rewrite !== "static") {
    return fail(`hermitux: bad --rewrite '${rewrite}' (use off, static or lazy)`);
  }
  const hostCalls = values["host-calls"] ?? (Deno.env.get("HERMITUX_HOST_CALLS") || undefined); // empty: unset
  if (hostCalls !== undefined && hostCalls !== "exit" && hostCalls !== "exitless") {
    return fail(`hermitux: bad --host-calls '${hostCalls}' (use exit or exitless)`);
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
    console.error(
      `hermitux: platform ${platform} (guest at CPL ${guestCpl(platform)}), ` +
        `host calls ${hostCalls ?? defaultHostCalls(platform)}`,
    );
  }
  try {
    const result = await boot({
      path,
      argv0: bin,
      args: guestArgs,
      env,
      memory,
      timeout,
      maxProcesses,
      trace: values.trace,
      platform,
      rewrite,
      hostCalls,
      registry,
      mounts,
      cwd: values.workdir ? resolve(cwd, values.workdir) : cwd,
    });
    if (values.stats || values.verbose) {
      console.error(`hermitux: stats ${JSON.stringify(result.stats)}`);
      if (result.perProcess.length > 1) console.error(processLines(result.perProcess));
    }
    return result.timedOut ? 124 : result.status;
  } catch (e) {
    if (e instanceof ElfError) return fail(`hermitux: ${e.message}`, 126);
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
    } ms, ${p.exits} exits, ${p.hostCalls} host calls (${p.exitless} exitless): ${p.command}`;
  const sum = (k: "runMs" | "exits" | "hostCalls" | "exitless") =>
    procs.reduce((n, p) => n + p[k], 0);
  return [
    ...procs.map(line),
    `hermitux: ${procs.length} processes: ${sum("runMs").toFixed(1)} ms, ${sum("exits")} exits, ${
      sum("hostCalls")
    } host calls (${sum("exitless")} exitless)`,
  ].join("\n");
}
