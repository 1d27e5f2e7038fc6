/**
 * The holder: the host process of one container (`hermitux oci init`,
 * started by `create`), as runc's `runc init` is. It boots the container's
 * first process (a VM, stopped before its first instruction), tells
 * `create` it is ready, waits on `start.sock` for `start`, then runs the
 * VM to its end on this thread and exits with its status: the container's,
 * which the shim reads from this pid. Host signals sent to it (by `kill`)
 * are raised in the guest (src/vm/hostsignals.ts); before `start`, one
 * whose default action ends a process ends it. Its standard streams are
 * the container's.
 * @module
 */
import { Vm } from "../vm/vm.ts";
import { keepSpareMemory } from "../vm/memory.ts";
import { HostSignals } from "../vm/hostsignals.ts";
import { bootOptions, readSpec } from "./spec.ts";
import { startSocket } from "./state.ts";
import { openConsole } from "./console.ts";
import type { Logger } from "./log.ts";

/** What `create` hands its holder (as one JSON argument). */
export interface HolderArgs {
  /** The runtime root. */
  root: string;
  /** The container id. */
  id: string;
  /** The bundle's absolute path. */
  bundle: string;
  /** The socket `create` waits on for "ready" or an error. */
  notify: string;
  /** `--console-socket`: where the pty master goes when `process.terminal`. */
  consoleSocket?: string;
  /**
   * For `exec`: the process to run in place of the bundle's, at once
   * (there is no `start` for an exec'd process).
   */
  process?: Record<string, unknown>;
}

const SIGWINCH = 28;

async function tell(path: string, message: object): Promise<void> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await conn.write(new TextEncoder().encode(JSON.stringify(message) + "\n"));
  } finally {
    conn.close();
  }
}

/** Runs the holder; never returns (the process exits with the container's status). */
export async function holder(a: HolderArgs, log: Logger): Promise<never> {
  let vm: Vm | undefined, signals: HostSignals | undefined, listener: Deno.UnixListener | undefined;
  const sock = startSocket(a.root, a.id);
  try {
    // The Worker starts while the VM boots: the run asks it only once it runs.
    const starting = HostSignals.start().then((s) => signals = s);
    starting.catch(() => {}); // awaited below, after the boot
    const relay = { take: () => signals?.take() ?? [] };
    const spec = readSpec(a.bundle);
    if (a.process) spec.process = a.process as typeof spec.process;
    const { options, warnings } = bootOptions(a.bundle, spec);
    for (const w of warnings) log.warn(w);
    if (spec.process?.terminal) {
      if (!a.consoleSocket) throw new Error("process.terminal is set but no --console-socket");
      const slave = openConsole(a.consoleSocket, spec.process.consoleSize);
      options.stdio = [slave, slave, slave];
    }
    vm = await Vm.create({ ...options, signals: relay });
    await starting;
    // An exec'd process runs at once: no start.sock (the container has its own).
    if (!a.process) listener = Deno.listen({ transport: "unix", path: sock });
    await tell(a.notify, { ok: true });
  } catch (e) {
    const message = (e as Error).message.replace(/^hermitux: /, "");
    try {
      await tell(a.notify, { error: message });
    } catch { /* create is gone */ }
    log.error(message);
    Deno.exit(1);
  }
  if (a.process) return run(vm!, signals!, log);
  // Until start: a signal that would end a process ends this one.
  const early = setInterval(() => {
    const fatal = signals!.take().find((n) => n !== SIGWINCH);
    if (fatal === undefined) return;
    try {
      Deno.removeSync(sock);
    } catch { /* gone */ }
    Deno.exit(128 + fatal);
  }, 50);
  for (;;) {
    const conn = await listener!.accept();
    const buf = new Uint8Array(16);
    const n = await conn.read(buf).catch(() => null);
    if (n === null || new TextDecoder().decode(buf.subarray(0, n)).trim() !== "start") {
      conn.close();
      continue;
    }
    try {
      Deno.removeSync(sock);
    } catch { /* gone */ }
    listener!.close();
    await conn.write(new TextEncoder().encode("ok\n")).catch(() => 0);
    conn.close();
    break;
  }
  clearInterval(early);
  return run(vm!, signals!, log);
}

/** Runs the VM to its end on this thread; exits with its status. */
function run(vm: Vm, signals: HostSignals, log: Logger): never {
  let status: number;
  try {
    const r = vm.run();
    status = r.timedOut ? 124 : r.status;
  } catch (e) {
    log.error(`internal error: ${(e as Error).stack ?? e}`);
    status = 70;
  }
  keepSpareMemory(false);
  vm.dispose();
  signals.close();
  Deno.exit(status);
}
