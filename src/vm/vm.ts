/**
 * A hermitux VM, as the library's users hold it: configuration → the first
 * guest process (its own KVM VM: machine.ts, set up by setup.ts) → the
 * process table's run of it and of every process it starts → how it ended.
 *
 * The parts: `Machine` (KVM VM, RAM, vCPUs), `Guest` (one image
 * of a process: its threads, signals, fds and the loop that serves them),
 * `ProcessTable` (src/process/table.ts: every process of the run, and the
 * loop that serves them all once there are several).
 * @module
 */
import { OutputStream } from "./streams.ts";
import { closeCaptures } from "./stdio.ts";
import { kernelImage } from "../kernel/image.ts";
import { hostProfile } from "./hostprobe.ts";
import { ElfError, parseElf } from "../loader/elf.ts";
import { ProcessTable } from "../process/table.ts";
import { attachProcesses } from "../syscalls/procs.ts";
import { monotonicNs } from "../syscalls/signal.ts";
import { Guest } from "./guest.ts";
import type { BootOptions, RunResult } from "./options.ts";
import { readBootProgram, shebang } from "./program.ts";
import { MountTable } from "../vfs/mounts.ts";
import { setupImage } from "./setup.ts";
import type { Grants } from "../syscalls/grants.ts";
import { limitGrants } from "../syscalls/limits.ts";
import { NetPolicy } from "../net/policy.ts";
import type { GdbStub } from "../gdb/stub.ts";

export type { BootOptions, ProcessStats, RunResult, RunStats } from "./options.ts";

/** A booted (not yet running) guest. Dispose it to free every fd and mapping. */
export class Vm implements Disposable, AsyncDisposable {
  #guest: Guest;
  #table: ProcessTable;
  #gdb?: GdbStub;
  #out?: OutputStream;
  #err?: OutputStream;

  private constructor(guest: Guest, table: ProcessTable, gdb?: GdbStub) {
    this.#guest = guest;
    this.#table = table;
    this.#gdb = gdb;
  }

  /**
   * Creates the VM and loads the program (found through the mounts when
   * one holds its path: see readBootProgram); throws a clear error on bad
   * input.
   */
  static async create(options: BootOptions): Promise<Vm> {
    // The defaults follow this host's measured costs: read (or measured)
    // once per process, here where boot may wait; the Guest reads it back.
    const auto = !options.rewrite || options.rewrite === "auto";
    if (options.gdb === undefined && (auto || !options.hostCalls)) await hostProfile();
    const kernel = await kernelImage();
    const mounts = new MountTable(options.mounts ?? []);
    let elf, bytes;
    try {
      bytes = readBootProgram(options.path, mounts);
      for (let depth = 0; bytes[0] === 0x23 && bytes[1] === 0x21; depth++) {
        if (depth === 4) throw new ElfError(`${options.path}: too many levels of #! interpreters`);
        options = shebang(options, bytes);
        bytes = readBootProgram(options.path, mounts);
      }
      elf = parseElf(bytes, options.path);
    } catch (e) {
      mounts.close();
      throw e;
    }
    let grants;
    try {
      grants = await runGrants(options);
    } catch (e) {
      mounts.close();
      throw e;
    }
    const table = new ProcessTable(Deno.pid, options.maxProcesses, grants);
    table.signals = options.signals;
    if (options.profile) {
      // Loaded only for a profiled run, as gdb's stub below.
      const [{ Profile }, { Sampler }] = await Promise.all([
        import("../profile/profile.ts"),
        import("../profile/sampler.ts"),
      ]);
      const profile = new Profile(options.profile === true ? {} : options.profile);
      table.profile = profile;
      table.sampler = (g) => new Sampler(g, profile);
    }
    options = { ...options, env: guestEnv(options) };
    let gdb: GdbStub | undefined;
    if (options.gdb !== undefined) {
      // Single steps and breakpoints want plain syscall sites and vCPU 0 on this thread.
      options.rewrite = !options.rewrite || options.rewrite === "auto" ? "off" : options.rewrite;
      options.hostCalls = options.hostCalls === "exitless" ? "exitless" : "exit";
      try {
        const { GdbStub } = await import("../gdb/stub.ts");
        gdb = new GdbStub(options.gdb, options.onDiagnostic ?? stderrLine);
      } catch (e) {
        mounts.close();
        throw new Error(`hermitux: gdb: ${(e as Error).message}`);
      }
    }
    const guest = new Guest(options, table);
    guest.mounts = mounts; // setupImage keeps them (the guest disposes of them)
    if (options.rewrite === "static") {
      guest.sites = (await import("../analysis/sites.ts")).syscallSites;
    }
    try {
      setupImage(guest, options, elf, bytes, kernel);
      if (gdb) {
        gdb.arm(guest, options.path);
        guest.debugger = gdb;
      }
    } catch (e) {
      gdb?.close();
      guest.dispose();
      throw e;
    }
    attachProcesses(guest.process!, table.hostFor(table.addRoot(guest, Deno.ppid)));
    return new Vm(guest, table, gdb);
  }

  /** `syscall` sites patched before boot (--rewrite=static). */
  get rewrittenSites(): number {
    return this.#guest.rewrittenSites;
  }

  /**
   * Runs the guest to its end: its process and every process it starts
   * (the first one's end ends the others).
   */
  run(): RunResult {
    const timeout = this.#guest.timeout;
    const deadline = timeout ? monotonicNs() + BigInt(Math.round(timeout * 1e9)) : undefined;
    const result = this.#table.run(deadline);
    this.#gdb?.ended(result);
    return result;
  }

  /**
   * Runs the guest to its end as {@linkcode run} does, but in slices of a
   * few ms with the event loop let run between them: `signal` can stop it
   * (the first process is killed, as by SIGKILL from outside: status 137),
   * and {@linkcode stdout} and {@linkcode stderr} stream while it runs.
   */
  async runAsync(options: { signal?: AbortSignal } = {}): Promise<RunResult> {
    const timeout = this.#guest.timeout;
    const deadline = timeout ? monotonicNs() + BigInt(Math.round(timeout * 1e9)) : undefined;
    const signal = options.signal;
    let aborted = false;
    const abort = () => {
      if (!aborted) this.#table.abort();
      aborted = true;
    };
    if (signal?.aborted) abort();
    // Piped output streams from the start, read or not (whole in the result too).
    void this.stdout, void this.stderr;
    for (;;) {
      const result = this.#table.runSlice(deadline, performance.now() + SLICE_MS);
      if (result) {
        this.#gdb?.ended(result);
        this.#out?.end(result.stdout);
        this.#err?.end(result.stderr);
        return result;
      }
      this.#out?.pump();
      this.#err?.pump();
      // A macrotask: timers, I/O and whatever aborts the signal get their turn.
      await new Promise((res) => setTimeout(res, 0));
      if (signal?.aborted) abort();
    }
  }

  /** What the guest writes to its stdout, as it runs (`BootOptions.stdout: "piped"`, {@linkcode runAsync}). */
  get stdout(): ReadableStream<Uint8Array> | undefined {
    const c = this.#table.stdio?.captures;
    if (c?.stdout === undefined && !this.#out) return undefined;
    this.#out ??= new OutputStream(() => this.#table.stdio?.captures.stdout);
    return this.#out.readable;
  }

  /** What the guest writes to its stderr, as {@linkcode stdout}. */
  get stderr(): ReadableStream<Uint8Array> | undefined {
    const c = this.#table.stdio?.captures;
    if (c?.stderr === undefined && !this.#err) return undefined;
    this.#err ??= new OutputStream(() => this.#table.stdio?.captures.stderr);
    return this.#err.readable;
  }

  /** The port the gdb stub listens on (`BootOptions.gdb`), if there is one. */
  get gdbPort(): number | undefined {
    return this.#gdb?.port;
  }

  /**
   * Frees the vCPUs, the VM, the KVM fd and guest memory (kept, cleared,
   * for the next VM). The VM fd's close, where KVM tears the VM down, runs
   * on a worker thread; `await using` waits for it. Safe to call twice.
   */
  dispose(): void {
    this.#gdb?.close();
    this.#guest.dispose();
    if (this.#table.stdio) closeCaptures(this.#table.stdio); // not read: run() was not called
  }

  /** Same as {@linkcode Vm.dispose}. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * {@linkcode Vm.dispose}, then waits until KVM has torn the VM down and
   * its last fd is closed (dispose leaves that to a worker thread).
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
    await this.#guest.machine?.teardown;
  }
}

function stderrLine(m: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(m + "\n"));
}

/** What the run is granted: the network (names resolved now) and the limits. */
async function runGrants(options: BootOptions): Promise<Grants> {
  const report = options.onDiagnostic ??
    ((m: string) => Deno.stderr.writeSync(new TextEncoder().encode(m + "\n")));
  return {
    net: await NetPolicy.create(options.allowNet, report),
    limits: limitGrants(options),
  };
}

/**
 * The guest's environment: the host variables `allowEnv` grants (in the
 * host's order), then `env`.
 */
export function guestEnv(options: BootOptions): Record<string, string> {
  const out: Record<string, string> = {};
  const grant = options.allowEnv;
  if (grant) {
    const names = grant === true ? undefined : grant.map((n) => n.trim()).filter((n) => n);
    const granted = (k: string) =>
      !names || names.some((n) => n.endsWith("*") ? k.startsWith(n.slice(0, -1)) : k === n);
    for (const [k, v] of Object.entries(Deno.env.toObject())) if (granted(k)) out[k] = v;
  }
  return Object.assign(out, options.env ?? {});
}

/** Boots `options.path`, runs it to the end and frees the VM. */
export async function boot(options: BootOptions): Promise<RunResult> {
  using vm = await Vm.create(options);
  return options.signal ? await vm.runAsync({ signal: options.signal }) : vm.run();
}

/** How long an async run's slice lasts before the event loop gets its turn (ms). */
const SLICE_MS = 20;
