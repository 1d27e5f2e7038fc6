/**
 * `hermitux oci …` (bin/hermitux-oci): an OCI runtime with runc's command
 * line, so containerd's runc shim (and Docker, Kubernetes through
 * containerd) run containers on hermitux. The commands containerd uses:
 * create, start, state, kill, delete, ps, features, --version; and list.
 * Each container is a host process (the holder, src/oci/holder.ts) whose
 * exit status is the container's. See docs/OCI.md.
 * @module
 */
import { VERSION } from "../version.ts";
import { type Logger, makeLogger } from "./log.ts";
import { inBundle, readSpec, SpecError } from "./config.ts";
import {
  alive,
  checkId,
  containerDir,
  type ContainerRecord,
  load,
  OCI_VERSION,
  ociState,
  RuntimeError,
  save,
  startSocket,
  startTimeOf,
  statusOf,
} from "./state.ts";
// Only the holder loads the VM (src/oci/holder.ts, imported on demand):
// the other commands start in a few tens of ms.
import type { HolderArgs } from "./holder.ts";
import { execIn, spawnHolder } from "./exec.ts";

/** Linux's standard signal names by number (x86-64). */
const SIGNAL_NAMES: readonly string[] = [
  "",
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGILL",
  "SIGTRAP",
  "SIGABRT",
  "SIGBUS",
  "SIGFPE",
  "SIGKILL",
  "SIGUSR1",
  "SIGSEGV",
  "SIGUSR2",
  "SIGPIPE",
  "SIGALRM",
  "SIGTERM",
  "SIGSTKFLT",
  "SIGCHLD",
  "SIGCONT",
  "SIGSTOP",
  "SIGTSTP",
  "SIGTTIN",
  "SIGTTOU",
  "SIGURG",
  "SIGXCPU",
  "SIGXFSZ",
  "SIGVTALRM",
  "SIGPROF",
  "SIGWINCH",
  "SIGIO",
  "SIGPWR",
  "SIGSYS",
];

const USAGE = `hermitux-oci ${VERSION}: an OCI runtime (runc's command line) on hermitux VMs

Usage: hermitux-oci [global options] COMMAND [options] ID

Global options:
  --root DIR          state directory (default /run/hermitux-oci)
  --log FILE          append messages to FILE
  --log-format FMT    text (default) or json
  --systemd-cgroup, --debug, --rootless=…  accepted, ignored

Commands:
  create ID --bundle DIR [--pid-file FILE] [--console-socket SOCK]
                      boot the container's first process, stopped before it runs
  start ID            let it run
  exec [--process FILE | --tty --cwd DIR --env K=V… ] [--detach] [--pid-file FILE]
       [--console-socket SOCK] ID [COMMAND…]
                      a new process in a running container (a holder and VMs of its own)
  state ID            its OCI state (JSON)
  kill ID [SIGNAL]    signal it (default SIGTERM; --all accepted)
  delete ID           forget a stopped container (--force: kill it first)
  ps ID [--format json|table]
                      its host pids
  list [--format json|table]
  features            what this runtime supports (JSON)
  --version`;

/** Signal names and numbers kill accepts: "TERM", "SIGTERM", "15". */
export function parseSignal(s: string): number {
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n >= 1 && n <= 64) return n;
  } else {
    const name = s.toUpperCase().startsWith("SIG") ? s.toUpperCase() : `SIG${s.toUpperCase()}`;
    const n = SIGNAL_NAMES.indexOf(name === "SIGIOT" ? "SIGABRT" : name);
    if (n > 0) return n;
  }
  throw new RuntimeError(`unknown signal "${s}"`);
}

/** Splits a command's arguments into flags (with values for `valued`) and positionals. */
function parse(
  args: string[],
  valued: string[],
): { flags: Map<string, string | true>; rest: string[] } {
  const flags = new Map<string, string | true>(), rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const m = /^--?([\w-]+)(?:=(.*))?$/.exec(a);
    if (!m || a === "-") {
      rest.push(a);
      continue;
    }
    const name = m[1];
    if (m[2] !== undefined) flags.set(name, m[2]);
    else if (valued.includes(name)) {
      if (i + 1 >= args.length) throw new RuntimeError(`flag needs an argument: --${name}`);
      flags.set(name, args[++i]);
    } else flags.set(name, true);
  }
  return { flags, rest };
}

/** What a command needs besides its arguments. */
interface Context {
  root: string;
  cwd: string;
  log: Logger;
  logFile?: string;
  logFormat: "text" | "json";
}

const abs = (cwd: string, p: string) => p.startsWith("/") ? p : `${cwd}/${p}`;

/** `create`: the holder boots the container and waits; its pid goes to --pid-file. */
async function create(c: Context, args: string[]): Promise<number> {
  const { flags, rest } = parse(args, [
    "bundle",
    "b",
    "pid-file",
    "console-socket",
    "pidfd-socket",
    "preserve-fds",
  ]);
  const id = checkId(rest[0]);
  const bundle = abs(c.cwd, String(flags.get("bundle") ?? flags.get("b") ?? c.cwd));
  const pidFile = flags.get("pid-file");
  const consoleSocket = flags.get("console-socket");
  // Read here for the terminal; the holder maps the rest, and says what it cannot run.
  const spec = readSpec(bundle);
  const tty = spec.process?.terminal ?? false;
  if (tty && typeof consoleSocket !== "string") {
    throw new RuntimeError(
      "cannot allocate tty if runc will detach without setting console socket",
    );
  }
  Deno.mkdirSync(c.root, { recursive: true, mode: 0o711 });
  const dir = containerDir(c.root, id);
  try {
    Deno.mkdirSync(dir, { mode: 0o711 });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new RuntimeError(`container with id exists: ${id}`);
    }
    throw e;
  }
  const notify = `${dir}/notify.sock`;
  const h: HolderArgs = {
    root: c.root,
    id,
    bundle,
    notify,
    consoleSocket: typeof consoleSocket === "string" ? abs(c.cwd, consoleSocket) : undefined,
  };
  let child: Deno.ChildProcess;
  try {
    child = await spawnHolder(c, h, bundle, tty);
  } catch (e) {
    Deno.removeSync(dir, { recursive: true });
    throw e;
  }
  const record: ContainerRecord = {
    id,
    pid: child.pid,
    startTime: startTimeOf(child.pid),
    bundle,
    rootfs: inBundle(bundle, spec.root!.path),
    created: new Date().toISOString(),
    annotations: spec.annotations ?? {},
  };
  save(c.root, record);
  if (typeof pidFile === "string") {
    const path = abs(c.cwd, pidFile), tmp = `${path}.tmp`;
    Deno.writeTextFileSync(tmp, String(child.pid));
    Deno.renameSync(tmp, path);
  }
  child.unref();
  return 0;
}

/** `start`: tells the created container's holder to run it. */
async function start(c: Context, args: string[]): Promise<number> {
  const id = checkId(parse(args, []).rest[0]);
  const r = load(c.root, id);
  const status = statusOf(c.root, r);
  if (status === "stopped") throw new RuntimeError("cannot start a container that has stopped");
  if (status === "running") throw new RuntimeError("cannot start an already running container");
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path: startSocket(c.root, id) });
  } catch {
    throw new RuntimeError("cannot start a container that has stopped");
  }
  try {
    await conn.write(new TextEncoder().encode("start\n"));
    const buf = new Uint8Array(16);
    const n = await conn.read(buf);
    if (n === null || !new TextDecoder().decode(buf.subarray(0, n)).startsWith("ok")) {
      throw new RuntimeError("cannot start a container that has stopped");
    }
  } finally {
    conn.close();
  }
  return 0;
}

/** `state`: the OCI state JSON. */
function state(c: Context, args: string[]): number {
  const id = checkId(parse(args, []).rest[0]);
  console.log(JSON.stringify(ociState(c.root, load(c.root, id)), null, 2));
  return 0;
}

/** `kill`: the signal goes to the holder, which raises it in the guest. */
function kill(c: Context, args: string[]): number {
  const { rest } = parse(args, []);
  const id = checkId(rest[0]);
  const signo = parseSignal(rest[1] ?? "SIGTERM");
  const r = load(c.root, id);
  if (!alive(r)) throw new RuntimeError("container not running");
  const name = SIGNAL_NAMES[signo] as Deno.Signal | undefined;
  if (!name || name === "SIGSTKFLT") throw new RuntimeError(`cannot send signal ${signo}`);
  Deno.kill(r.pid, name);
  return 0;
}

/** Waits until the holder in `r` is gone (or a zombie): up to `ms`. */
async function gone(r: ContainerRecord, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (!alive(r)) return true;
    await new Promise((res) => setTimeout(res, 20));
  }
  return !alive(r);
}

/** `delete`: removes a stopped (or created, or with --force any) container. */
async function remove(c: Context, args: string[]): Promise<number> {
  const { flags, rest } = parse(args, []);
  const id = checkId(rest[0]);
  const force = flags.has("force") || flags.has("f");
  let r: ContainerRecord;
  try {
    r = load(c.root, id);
  } catch (e) {
    // An aborted create may have left the directory without a state.
    try {
      Deno.removeSync(containerDir(c.root, id), { recursive: true });
    } catch { /* there was none */ }
    if (force) return 0;
    throw e;
  }
  const status = statusOf(c.root, r);
  if (status === "running" && !force) {
    throw new RuntimeError(`cannot delete container ${id} that is not stopped: running`);
  }
  if (status !== "stopped") {
    try {
      Deno.kill(r.pid, "SIGKILL");
    } catch { /* gone meanwhile */ }
    if (!await gone(r, 10_000)) throw new RuntimeError(`container ${id} did not stop`);
  }
  Deno.removeSync(containerDir(c.root, id), { recursive: true });
  return 0;
}

/** `ps`: the host pids of the container (its holder holds every guest process). */
function ps(c: Context, args: string[]): number {
  const { flags, rest } = parse(args, ["format", "f"]);
  const id = checkId(rest[0]);
  const r = load(c.root, id);
  const pids = alive(r) ? [r.pid] : [];
  const format = flags.get("format") ?? flags.get("f") ?? "table";
  if (format === "json") console.log(JSON.stringify(pids));
  else console.log(["PID", ...pids.map(String)].join("\n"));
  return 0;
}

/** `list`: every container under the root. */
function list(c: Context, args: string[]): number {
  const { flags } = parse(args, ["format", "f"]);
  const states = [];
  try {
    for (const e of Deno.readDirSync(c.root)) {
      try {
        states.push(ociState(c.root, load(c.root, e.name)));
      } catch { /* not a container */ }
    }
  } catch { /* no root yet */ }
  if ((flags.get("format") ?? flags.get("f")) === "json") console.log(JSON.stringify(states));
  else {
    console.log("ID\tPID\tSTATUS\tBUNDLE\tCREATED");
    for (const s of states) {
      console.log(`${s.id}\t${s.pid}\t${s.status}\t${s.bundle}\t${s.created}`);
    }
  }
  return 0;
}

/** `features`: what the runtime supports, in runc's format. */
function features(): number {
  console.log(JSON.stringify(
    {
      ociVersionMin: "1.0.0",
      ociVersionMax: OCI_VERSION,
      hooks: [],
      mountOptions: ["bind", "rbind", "ro", "rw"],
      linux: { namespaces: [], capabilities: [], cgroup: { v1: false, v2: false, systemd: false } },
      annotations: {
        "dev.hermitux.allow-net": "network grant (as --allow-net)",
        "dev.hermitux.memory": "guest RAM per process",
      },
    },
    null,
    2,
  ));
  return 0;
}

/** Runs `hermitux oci ARGS`; resolves to the exit status (`init` never returns). */
export async function ociMain(args: string[], cwd: string): Promise<number> {
  const { flags, rest } = (() => {
    // Global options come before the command.
    let i = 0;
    while (i < args.length && args[i].startsWith("-")) {
      i += ["--root", "--log", "--log-format", "--criu"].includes(args[i]) ? 2 : 1;
    }
    const g = parse(args.slice(0, i), ["root", "log", "log-format", "criu"]);
    return { flags: g.flags, rest: args.slice(i) };
  })();
  if (flags.has("version") || flags.has("v")) {
    console.log(`hermitux-oci version ${VERSION}\nspec: ${OCI_VERSION}`);
    return 0;
  }
  if (flags.has("help") || flags.has("h") || rest[0] === "help") {
    console.log(USAGE);
    return 0;
  }
  const format = flags.get("log-format") ?? "text";
  if (format !== "text" && format !== "json") {
    console.error(`hermitux-oci: bad --log-format '${format}' (text or json)`);
    return 2;
  }
  const logFile = typeof flags.get("log") === "string"
    ? abs(cwd, flags.get("log") as string)
    : undefined;
  const c: Context = {
    root: abs(cwd, String(flags.get("root") ?? "/run/hermitux-oci")),
    cwd,
    log: makeLogger(logFile, format),
    logFile,
    logFormat: format,
  };
  const [command, ...cargs] = rest;
  try {
    switch (command) {
      case "create":
        return await create(c, cargs);
      case "start":
        return await start(c, cargs);
      case "run": {
        const id = parse(cargs, ["bundle", "b", "pid-file", "console-socket"]).rest[0];
        throw new RuntimeError(`run is not supported: use create ${id ?? "ID"} then start`);
      }
      case "state":
        return state(c, cargs);
      case "kill":
        return kill(c, cargs);
      case "delete":
        return await remove(c, cargs);
      case "ps":
        return ps(c, cargs);
      case "list":
        return list(c, cargs);
      case "features":
        return features();
      case "init": {
        const { holder } = await import("./holder.ts");
        return await holder(JSON.parse(cargs[0]) as HolderArgs, c.log);
      }
      case "exec":
        return await execIn(c, cargs);
      case "pause":
      case "resume":
      case "update":
      case "events":
      case "checkpoint":
      case "restore":
        throw new RuntimeError(`${command} is not supported by hermitux-oci yet`);
      case undefined:
        console.error(USAGE);
        return 2;
      default:
        throw new RuntimeError(`unknown command '${command}'`);
    }
  } catch (e) {
    if (e instanceof RuntimeError || e instanceof SpecError) {
      c.log.error(e.message);
      return 1;
    }
    c.log.error(`internal error: ${(e as Error).stack ?? e}`);
    return 1;
  }
}
