// The runners bench:compare puts side by side: a program natively, under
// qemu-user (qemu-x86_64, TCG), in a gVisor sandbox (runsc do, ptrace
// platform; bench/setup.sh installs both), and under the hermitux CLI with
// its default flags and with `--host-calls=exitless --rewrite=lazy`. Every
// run goes through bench/c/timed.c, which times the whole process, reports
// its peak RSS and kills whatever is left of it.
import { spareMemoryReady } from "../mod.ts";
import { benchBinary } from "./common.ts";

/** Where a program runs: natively, under qemu-user, in gVisor, or the hermitux CLI. */
export type Runner = "native" | "qemu" | "gvisor" | "hermitux" | "alt";

/** Every runner, in the table's order. */
export const RUNNERS: readonly Runner[] = ["native", "qemu", "gvisor", "hermitux", "alt"];

/** The flags of the second hermitux column ("alt"). */
export const ALT_FLAGS = ["--host-calls=exitless", "--rewrite=lazy"];

/**
 * gVisor's platform. Debian's runsc (a 2022-12 build) has ptrace and kvm
 * only (systrap came later); its kvm platform hangs at boot under kvm_pvm.
 */
export const GVISOR_PLATFORM = "ptrace";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** How a runner runs a program. */
export interface PeerOptions {
  /** Working directory (default: the bench's own). */
  cwd?: string;
  /**
   * gVisor only: let the sandbox write to the host's files. `runsc do`
   * otherwise puts a tmpfs overlay over the host's root, so writes stay in
   * the sandbox's memory.
   */
  hostWrites?: boolean;
  /**
   * gVisor only: the host's network (`--rootless --network=host`; the
   * sandbox's own network needs iptables and a veth) instead of none.
   */
  hostNet?: boolean;
  /** More hermitux flags (grants, mounts), for both hermitux columns. */
  flags?: string[];
  /** The program's environment (otherwise empty, as a hermitux guest's). */
  env?: Record<string, string>;
  /** Kill the run after this many seconds (default 300). */
  timeout?: number;
}

/** The command line that runs `path args` with a runner. */
export function commandFor(
  r: Runner,
  path: string,
  args: string[],
  o: PeerOptions = {},
): [string, string[]] {
  if (r === "qemu") return ["qemu-x86_64", [path, ...args]];
  if (r === "gvisor") {
    const overlay = o.hostWrites ? ["-force-overlay=false"] : [];
    const net = o.hostNet
      ? ["--rootless", "--network=host"]
      : ["--rootless=false", "--network=none"];
    return ["runsc", [
      ...net,
      `--platform=${GVISOR_PLATFORM}`,
      "do",
      "-quiet",
      ...overlay,
      path,
      ...args,
    ]];
  }
  if (r === "hermitux" || r === "alt") {
    const env = Object.entries(o.env ?? {}).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
    const flags = [...r === "alt" ? ALT_FLAGS : [], ...env, ...o.flags ?? []];
    return [Deno.execPath(), ["run", "-A", "--quiet", CLI, "run", ...flags, path, ...args]];
  }
  return [path, args];
}

/** The environment of a runner's process. */
function envFor(r: Runner, o: PeerOptions): Record<string, string> {
  // Deno needs its own (HOME, DENO_DIR: the module cache); the guest gets only --env.
  if (r === "hermitux" || r === "alt") {
    const env = Deno.env.toObject();
    delete env.HERMITUX_REWRITE;
    delete env.HERMITUX_HOST_CALLS;
    return env;
  }
  const env: Record<string, string> = {};
  if (r === "gvisor") env.PATH = Deno.env.get("PATH") ?? "/usr/bin:/bin";
  return { ...env, ...o.env };
}

/** A whole run: wall time, peak RSS, and what the program wrote to stderr. */
export interface RunResult {
  /** Fork to wait4, in ms (bench/c/timed.c). */
  ms: number;
  /** Peak RSS in MiB (wait4's ru_maxrss: the process and its waited descendants). */
  rssMiB: number;
  /** stderr, without timed.c's own line. */
  err: string;
}

let timedPath: Promise<string> | undefined;
const timed = () => timedPath ??= benchBinary("timed");
const live = new Set<Deno.ChildProcess>();

function parseTimed(r: Runner, path: string, text: string): RunResult & { code: number } {
  const m = /\ntimed: wall ([\d.]+) ms maxrss (\d+) KiB status (\d+)\n?$/.exec(text);
  if (!m) throw new Error(`${r} ${path}: no timing: ${text.trim().split("\n").slice(-2)}`);
  const err = text.slice(0, m.index);
  const code = Number(m[3]);
  if (code !== 0) {
    const why = code === 124 ? "timed out" : `exit ${code}`;
    throw new Error(`${r} ${path}: ${why}: ${err.trim().split("\n").slice(-2).join(" ")}`);
  }
  return { ms: Number(m[1]), rssMiB: Number(m[2]) / 1024, err, code };
}

function spawnTimed(r: Runner, path: string, args: string[], o: PeerOptions) {
  return timed().then((t) => {
    const [cmd, argv] = commandFor(r, path, args, o);
    const child = new Deno.Command(t, {
      args: [String(o.timeout ?? 300), cmd, ...argv],
      cwd: o.cwd,
      clearEnv: true,
      env: envFor(r, o),
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    live.add(child);
    const out = child.output().finally(() => live.delete(child));
    return { child, out };
  });
}

/**
 * Runs `path args` with a runner, stdout to /dev/null, and times the whole
 * process. Waits first for hermitux's background work in this process (the
 * spare RAM's prefault) so nothing of it runs beside. Throws if the program
 * fails or times out.
 */
export async function runOn(
  r: Runner,
  path: string,
  args: string[] = [],
  o: PeerOptions = {},
): Promise<RunResult> {
  await spareMemoryReady();
  const { out } = await spawnTimed(r, path, args, o);
  const res = await out;
  return parseTimed(r, path, new TextDecoder().decode(res.stderr));
}

/** A server started by `startOn`. */
export interface Server {
  /** Whether it has ended (by itself or by `stop`). */
  readonly ended: boolean;
  /** Stops it (SIGTERM, SIGKILL 3 s later, to its whole group); returns its stderr. */
  stop(): Promise<string>;
}

/**
 * Starts `path args` with a runner and leaves it running until `stop` (or
 * its timeout, or the end of this process: see `killAll`).
 */
export async function startOn(
  r: Runner,
  path: string,
  args: string[],
  o: PeerOptions = {},
): Promise<Server> {
  await spareMemoryReady();
  const { child, out } = await spawnTimed(r, path, args, o);
  let ended = false;
  const done = out.then((res) => new TextDecoder().decode(res.stderr)).finally(() => ended = true);
  return {
    get ended() {
      return ended;
    },
    async stop() {
      if (!ended) {
        try {
          child.kill("SIGTERM");
        } catch { /* it ended meanwhile */ }
      }
      return await done;
    },
  };
}

/** Sends SIGTERM to every run still going (timed.c passes it on to the group). */
export function killAll(): void {
  for (const c of live) {
    try {
      c.kill("SIGTERM");
    } catch { /* gone */ }
  }
}

/** Why a runner cannot run here (not installed, or a trivial program fails), or undefined. */
export async function unavailable(r: Runner): Promise<string | undefined> {
  try {
    await runOn(r, "/bin/true");
    return undefined;
  } catch (e) {
    const what = r === "qemu" ? "qemu-x86_64" : r === "gvisor" ? "runsc" : "hermitux";
    const msg = (e as Error).message;
    return /No such file|exit 127/.test(msg)
      ? `${what} is not installed (bench/setup.sh installs it)`
      : `${what} fails here: ${msg}`;
  }
}
