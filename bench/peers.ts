// The peers bench:compare runs beside hermitux: the program natively, under
// qemu-user (qemu-x86_64, TCG) and in a gVisor sandbox (runsc do, ptrace
// platform); bench/setup.sh installs both. And the table's cells and
// footnotes.
import { spareMemoryReady } from "../mod.ts";

/** Where a host program runs: natively, under qemu-user, or in a gVisor sandbox. */
export type Runner = "native" | "qemu" | "gvisor";

/** How a peer runs a program. */
export interface PeerOptions {
  /** Working directory (default: the bench's own). */
  cwd?: string;
  /**
   * gVisor only: let the sandbox write to the host's files. `runsc do`
   * otherwise puts a tmpfs overlay over the host's root, so writes stay in
   * the sandbox's memory.
   */
  hostWrites?: boolean;
}

/**
 * gVisor's platform. Debian's runsc (a 2022-12 build) has ptrace and kvm
 * only (systrap came later); its kvm platform hangs at boot under kvm_pvm.
 */
export const GVISOR_PLATFORM = "ptrace";

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
    return ["runsc", [
      "--rootless=false",
      "--network=none",
      `--platform=${GVISOR_PLATFORM}`,
      "do",
      "-quiet",
      ...overlay,
      path,
      ...args,
    ]];
  }
  return [path, args];
}

/**
 * Runs `path args` with a runner, stdout to /dev/null; returns the wall time
 * of the whole run in ms and what the program wrote to stderr (the C loops'
 * own timings). Waits first for hermitux's background work (the spare RAM's
 * prefault) so nothing of hermitux's runs beside it. Throws if the program
 * fails.
 */
export async function runOn(
  r: Runner,
  path: string,
  args: string[] = [],
  o: PeerOptions = {},
): Promise<[number, string]> {
  await spareMemoryReady();
  const [cmd, argv] = commandFor(r, path, args, o);
  const t0 = performance.now();
  const out = await new Deno.Command(cmd, {
    args: argv,
    cwd: o.cwd,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  const ms = performance.now() - t0;
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new Error(
      `${r} ${path}: exit ${out.code}: ${err.trim().split("\n").slice(-2).join(" ")}`,
    );
  }
  return [ms, err];
}

/** Why a peer cannot run here (not installed, or a trivial program fails), or undefined. */
export async function unavailable(r: Runner): Promise<string | undefined> {
  try {
    await runOn(r, "/bin/true");
    return undefined;
  } catch (e) {
    const what = r === "qemu" ? "qemu-x86_64" : "runsc";
    return e instanceof Deno.errors.NotFound
      ? `${what} is not installed (bench/setup.sh installs it)`
      : `${what} fails here: ${(e as Error).message}`;
  }
}

/** A peer's figure with a footnote, or only a footnote ("—": the peer has no figure). */
export interface Noted {
  /** The figure, if there is one. */
  value?: number;
  /** The footnote's text. */
  note: string;
}

/** A table cell: a figure, or a footnoted figure or dash. */
export type Cell = number | Noted;

/** One row of the table. */
export interface Row {
  /** What is measured, with its unit. */
  name: string;
  /** The native figure. */
  native: number;
  /** qemu-user's cell. */
  qemu: Cell;
  /** gVisor's cell. */
  gvisor: Cell;
  /** hermitux's figure. */
  hermitux: number;
}

const fmt = (x: number) => Number.isFinite(x) ? x.toFixed(2) : "—";

/**
 * The table as Markdown lines, footnotes after it: each distinct note gets
 * a number, in order of first use.
 */
export function renderTable(rows: Row[]): string[] {
  const notes: string[] = [];
  const cell = (c: Cell) => {
    if (typeof c === "number") return fmt(c);
    let i = notes.indexOf(c.note);
    if (i < 0) i = notes.push(c.note) - 1;
    return `${c.value === undefined ? "—" : fmt(c.value)} [${i + 1}]`;
  };
  const lines = [
    "| measure | native | qemu-user | gVisor | hermitux | hermitux/native |",
    "|---|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    const ratio = `${(r.hermitux / r.native).toFixed(2)}×`;
    lines.push(
      `| ${r.name} | ${fmt(r.native)} | ${cell(r.qemu)} | ${cell(r.gvisor)} | ${
        fmt(r.hermitux)
      } | ${ratio} |`,
    );
  }
  lines.push("", ...notes.map((n, i) => `[${i + 1}] ${n}`));
  return lines;
}
