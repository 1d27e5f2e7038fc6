/**
 * Starting holders: the container's own (`create`) and one for each
 * `exec`. runc's `exec` joins a new process to the container's namespaces;
 * here the boundary is a VM, so an exec'd process gets a holder and VMs of
 * its own, on the container's root file system and bind mounts with the
 * container's configuration and the process spec `exec` is given. It sees
 * the container's files as its first process does (the same host
 * directories), but not its processes (its own /proc and process table)
 * nor its tmpfs mounts (each holder has its own in-memory ones).
 * @module
 */
import { RuntimeError } from "./state.ts";
import { alive, checkId, containerDir, load, statusOf } from "./state.ts";
import type { HolderArgs } from "./holder.ts";
import { readSpec } from "./config.ts";

/** What starting a holder needs of the command's context. */
export interface HolderContext {
  root: string;
  cwd: string;
  logFile?: string;
  logFormat: "text" | "json";
}

/** The runtime's root checkout: deno.json and src/oci/main.ts, for the holder's command line. */
const CHECKOUT = new URL("../../", import.meta.url);

/**
 * Starts a holder (`hermitux oci init` with `h`) in `cwd` and waits until
 * it has booted its VM (it says so on `h.notify`) or failed (then it is
 * killed and the error thrown). With `tty` it keeps none of this process's
 * standard streams (the pty is the process's).
 */
export async function spawnHolder(
  c: HolderContext,
  h: HolderArgs,
  cwd: string,
  tty: boolean,
): Promise<Deno.ChildProcess> {
  const listener = Deno.listen({ transport: "unix", path: h.notify });
  const global = ["--root", c.root, "--log-format", c.logFormat];
  if (c.logFile) global.push("--log", c.logFile);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      "--config",
      new URL("deno.json", CHECKOUT).pathname,
      new URL("src/oci/main.ts", CHECKOUT).pathname,
      ...global,
      "init",
      JSON.stringify(h),
    ],
    cwd,
    // With a terminal the process's stdio is the pty: the holder keeps
    // none of ours (the shim reads our output to its end).
    stdin: tty ? "null" : "inherit",
    stdout: tty ? "null" : "inherit",
    stderr: tty ? "null" : "inherit",
  }).spawn();
  const reply = (async () => {
    const conn = await listener.accept();
    let text = "";
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    conn.close();
    return JSON.parse(text) as { ok?: boolean; error?: string };
  })();
  const r: { ok?: boolean; error?: string } = await Promise.race([
    reply,
    child.status.then((s) => ({ error: `container init exited with status ${s.code}` })),
  ]);
  listener.close();
  try {
    Deno.removeSync(h.notify);
  } catch { /* the listener's close removed it */ }
  if (!r.ok) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    throw new RuntimeError(r.error ?? "container init failed");
  }
  return child;
}

/** Splits exec's arguments: flags with values, repeated --env, positionals. */
function execArgs(args: string[]) {
  const valued = new Set([
    "process",
    "p",
    "pid-file",
    "console-socket",
    "cwd",
    "env",
    "e",
    "user",
    "u",
  ]);
  const flags = new Map<string, string | true>(), env: string[] = [], rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const m = rest.length ? null : /^--?([\w-]+)(?:=(.*))?$/.exec(a);
    if (!m) {
      rest.push(a);
      continue;
    }
    const name = m[1];
    let value: string | true = true;
    if (m[2] !== undefined) value = m[2];
    else if (valued.has(name)) {
      if (i + 1 >= args.length) throw new RuntimeError(`flag needs an argument: --${name}`);
      value = args[++i];
    }
    if (name === "env" || name === "e") env.push(String(value));
    else flags.set(name, value);
  }
  return { flags, env, rest };
}

/**
 * `exec ID [COMMAND...]` or `exec --process FILE ID`: a new process in a
 * running container (as containerd's `ctr task exec` asks: `--process`,
 * `--detach`, `--pid-file`, `--console-socket`). Detached, it returns once
 * the process runs; otherwise with its exit status.
 */
export async function execIn(c: HolderContext, args: string[]): Promise<number> {
  const { flags, env, rest } = execArgs(args);
  const id = checkId(rest[0]);
  const r = load(c.root, id);
  if (statusOf(c.root, r) !== "running" || !alive(r)) {
    throw new RuntimeError("cannot exec in a stopped container");
  }
  const spec = readSpec(r.bundle);
  let process: Record<string, unknown>;
  const file = flags.get("process") ?? flags.get("p");
  if (typeof file === "string") {
    const path = file.startsWith("/") ? file : `${c.cwd}/${file}`;
    process = JSON.parse(Deno.readTextFileSync(path));
  } else {
    if (rest.length < 2) throw new RuntimeError("exec: no command given (or --process FILE)");
    const base = spec.process ?? {};
    process = {
      ...base,
      args: rest.slice(1),
      env: [...(base.env ?? []), ...env],
      terminal: flags.has("tty") || flags.has("t"),
    };
    const cwd = flags.get("cwd");
    if (typeof cwd === "string") process.cwd = cwd;
  }
  const tty = process.terminal === true;
  const consoleSocket = flags.get("console-socket");
  if (tty && typeof consoleSocket !== "string") {
    throw new RuntimeError(
      "cannot allocate tty if runc will detach without setting console socket",
    );
  }
  const n = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const h: HolderArgs = {
    root: c.root,
    id,
    bundle: r.bundle,
    notify: `${containerDir(c.root, id)}/exec-${n}.sock`,
    consoleSocket: typeof consoleSocket === "string"
      ? (consoleSocket.startsWith("/") ? consoleSocket : `${c.cwd}/${consoleSocket}`)
      : undefined,
    process,
  };
  const child = await spawnHolder(c, h, r.bundle, tty);
  const pidFile = flags.get("pid-file");
  if (typeof pidFile === "string") {
    const path = pidFile.startsWith("/") ? pidFile : `${c.cwd}/${pidFile}`, tmp = `${path}.tmp`;
    Deno.writeTextFileSync(tmp, String(child.pid));
    Deno.renameSync(tmp, path);
  }
  if (flags.has("detach") || flags.has("d")) {
    child.unref();
    return 0;
  }
  const status = await child.status;
  return status.signal ? 128 + (status.code & 0x7f || 0) : status.code;
}
