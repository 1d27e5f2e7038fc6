// Native, qemu-user, gVisor and hermitux side by side in one run: boot →
// exit, syscall latency (in-guest and host-served), signals, python3
// start-up, a compute loop, file I/O, and processes (fork, posix_spawn of a
// static and a dynamic program, a dash loop of 100 /bin/true, fork after
// touching 100 MiB). Prints the platform's floor, then a Markdown table of
// medians with hermitux/native ratios, its footnotes, and the process
// targets.
//
//   deno task bench:compare                      (runs bench/setup.sh first)
//   COMPARE_ONLY=proc,boot deno task bench:compare
//
// Sections for COMPARE_ONLY: boot, loop, python, compute, fileio, proc.
// The peers run the same programs (bench/c/*.c, built once); see peers.ts.
import { boot, type HostCalls, type MountSpec } from "../mod.ts";
import { benchBinary, devNull } from "./common.ts";
import {
  type Cell,
  GVISOR_PLATFORM,
  renderTable,
  type Row,
  type Runner,
  runOn,
  unavailable,
} from "./peers.ts";
import { fixture } from "../tests/fixtures.ts";

const ONLY = Deno.env.get("COMPARE_ONLY")?.split(",");
const loadAtStart = Deno.loadavg()[0];
const want = (section: string) => !ONLY || ONLY.includes(section);

const nul = devNull();
const stdio: [number, number, number] = [0, nul, nul];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const num = (s: string, k: string) => Number(new RegExp(`${k} ([\\d.]+)`).exec(s)?.[1]);
const perCall = (s: string) => Number(/([\d.]+) ns\/call/.exec(s)?.[1]);

/** The median of `n` runs of `f`. */
async function times(n: number, f: () => Promise<number>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) xs.push(await f());
  return median(xs);
}

const native = (path: string, args: string[] = [], cwd?: string) =>
  runOn("native", path, args, { cwd });

/** How a guest runs. */
interface GuestOptions {
  /** A host directory mounted read-write at /work, the guest's cwd. */
  dir?: string;
  rewrite?: "off" | "lazy";
  hostCalls?: HostCalls;
  /** More mounts. */
  mounts?: MountSpec[];
  env?: Record<string, string>;
}

/** Boots `path args` in-process; returns the wall time in ms and what the guest wrote to fd 2. */
async function guest(
  path: string,
  args: string[] = [],
  o: GuestOptions = {},
): Promise<[number, string]> {
  const err: string[] = [];
  const t0 = performance.now();
  const registry = (await import("../mod.ts")).defaultRegistry();
  const write = registry.handler(1)!;
  registry.override("write", (c) => {
    if (c.args[0] !== 2n) return write(c);
    err.push(new TextDecoder().decode(c.process.mem.slice(c.args[1], c.args[2])));
    return Number(c.args[2]);
  });
  registry.override("writev", (c) => {
    let n = 0;
    for (let i = 0n; i < c.args[2]; i++) {
      const base = c.process.mem.u64(c.args[1] + i * 16n);
      const len = c.process.mem.u64(c.args[1] + i * 16n + 8n);
      if (c.args[0] === 2n) err.push(new TextDecoder().decode(c.process.mem.slice(base, len)));
      n += Number(len);
    }
    return n;
  });
  const { dir, rewrite = "off", hostCalls = "exitless", env } = o;
  const mounts = [
    ...dir ? [{ host: dir, guest: "/work", readOnly: false }] : [],
    ...o.mounts ?? [],
  ];
  const r = await boot({
    path,
    args,
    stdio,
    registry,
    mounts,
    cwd: dir ? "/work" : "/",
    rewrite,
    hostCalls,
    env,
  });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`hermitux ${path}: status ${r.status}: ${err.join("")}`);
  return [ms, err.join("")];
}

// The peers: a cell each, measured once per key (the rows that only differ
// in hermitux's settings share it), or "—" with the reason.
const PEERS = ["qemu", "gvisor"] as const;
const reason = new Map<Runner, string | undefined>();
for (const r of PEERS) reason.set(r, await unavailable(r));
const memo = new Map<string, Cell>();
async function peer(
  r: "qemu" | "gvisor",
  key: string,
  measure: () => Promise<number>,
  note?: string,
): Promise<Cell> {
  const k = `${r} ${key}`;
  if (!memo.has(k)) {
    let cell: Cell;
    const why = reason.get(r);
    if (why) cell = { note: why };
    else {
      try {
        const v = await measure();
        cell = note ? { value: v, note } : v;
      } catch (e) {
        cell = { note: (e as Error).message };
      }
    }
    memo.set(k, cell);
  }
  return memo.get(k)!;
}

/** Both peers' cells for `key`, one after the other (never side by side). */
async function peers(key: string, measure: (r: Runner) => Promise<number>): Promise<Cell[]> {
  const cells: Cell[] = [];
  for (const r of PEERS) cells.push(await peer(r, key, () => measure(r)));
  return cells;
}

const SANDBOX_BOOT =
  "A whole `runsc do` run: the sandbox's start (Sentry and Gofer) and teardown, as hermitux's " +
  "figure is a VM's.";
const IN_SANDBOX = "Timed inside one sandbox by bench/c/spawn.c (posix_spawn + waitpid, median): " +
  "a `runsc do` run would add the sandbox's own start (the boot rows).";
const QEMU_EXEC = "qemu-user runs only the parent: a program it execs starts natively " +
  "(qemu-x86_64 passes execve to the host, and binfmt_misc has no entry for the host's own " +
  "architecture).";
const HOST_WRITES = "`runsc do -force-overlay=false`: the file goes through the Gofer to the " +
  "host's directory (the default overlay would keep it in the sandbox's memory).";

const rows: Row[] = [];

if (want("boot")) {
  const hello = await fixture("hello", "musl-static");
  for (let i = 0; i < 3; i++) await guest(hello); // warm-up: dlopen, kernel image
  for (const hostCalls of ["exit", "exitless"] as const) {
    const bootN = [], bootH = [];
    for (let i = 0; i < 30; i++) {
      bootN.push((await native(hello))[0]);
      bootH.push((await guest(hello, [], { hostCalls }))[0]);
    }
    rows.push({
      name: `boot → exit, static hello, ${hostCalls} (ms)`,
      native: median(bootN),
      qemu: await peer(
        "qemu",
        "boot",
        () => times(30, async () => (await runOn("qemu", hello))[0]),
      ),
      gvisor: await peer(
        "gvisor",
        "boot",
        () => times(30, async () => (await runOn("gvisor", hello))[0]),
        SANDBOX_BOOT,
      ),
      hermitux: median(bootH),
    });
  }
}

if (want("loop")) {
  const loop = await benchBinary("loop");
  const cases = [
    ["getpid", 200000, "exit"],
    ["write", 5000, "exit"],
    ["write", 100000, "exitless"],
    ["signal", 2000, "exit"],
    ["signal", 5000, "exitless"],
  ] as const;
  for (const [kind, n, hostCalls] of cases) {
    for (const rewrite of ["off", "lazy"] as const) {
      const a: number[] = [], b: number[] = [];
      for (let i = 0; i < 5; i++) {
        a.push(perCall((await native(loop, [kind, String(n)]))[1]));
        b.push(perCall((await guest(loop, [kind, String(n)], { rewrite, hostCalls }))[1]));
      }
      // gVisor's ptrace platform takes ~40 µs a call here: at most 20000 calls a run.
      const [qemu, gvisor] = await peers(`loop ${kind}`, (r) => {
        const args = [kind, String(r === "gvisor" ? Math.min(n, 20000) : n)];
        return times(5, async () => perCall((await runOn(r, loop, args))[1]));
      });
      const what = kind === "getpid"
        ? "in-guest syscall (getpid)"
        : kind === "signal"
        ? `signal to itself (tgkill, handler, rt_sigreturn), ${hostCalls}`
        : `host-served syscall (write 1 B), ${hostCalls}`;
      const how = rewrite === "off" ? "syscall trap" : "rewritten site";
      rows.push({
        name: `${what}, ${how} (ns/call)`,
        native: median(a),
        qemu,
        gvisor,
        hermitux: median(b),
      });
    }
  }
}

// Dynamic programs see the host's system directories read-only.
const SYSTEM = ["/usr", "/lib", "/lib64", "/etc", "/bin"]
  .filter((d) => Deno.statSync(d).isDirectory)
  .map((d) => ({ host: d, guest: d, readOnly: true }));
const spawn = await benchBinary("spawn");
const inSandbox = (path: string, args: string[], n: number) => async () =>
  num((await runOn("gvisor", spawn, [String(n), path, ...args]))[1], "spawn");

if (want("python")) {
  // python3 start-up (dynamic: ld.so and its libraries through read-only system mounts).
  for (const [hostCalls, rewrite] of [["exit", "off"], ["exitless", "lazy"]] as const) {
    const pn: number[] = [], ph: number[] = [];
    for (let i = 0; i < 10; i++) {
      pn.push((await native("/usr/bin/python3", ["-c", "pass"]))[0]);
      ph.push(
        (await guest("/usr/bin/python3", ["-c", "pass"], { mounts: SYSTEM, rewrite, hostCalls }))[
          0
        ],
      );
    }
    const how = hostCalls === "exit" ? "exit" : "exitless, rewritten";
    rows.push({
      name: `python3 -c pass start-up, ${how} (ms)`,
      native: median(pn),
      qemu: await peer(
        "qemu",
        "python",
        () => times(10, async () => (await runOn("qemu", "/usr/bin/python3", ["-c", "pass"]))[0]),
      ),
      gvisor: await peer(
        "gvisor",
        "python",
        inSandbox("/usr/bin/python3", ["-c", "pass"], 10),
        IN_SANDBOX,
      ),
      hermitux: median(ph),
    });
  }
}

if (want("compute")) {
  const compute = await benchBinary("compute");
  const ca: number[] = [], cb: number[] = [];
  for (let i = 0; i < 3; i++) {
    ca.push(num((await native(compute))[1], "compute"));
    cb.push(num((await guest(compute))[1], "compute"));
  }
  const [qemu, gvisor] = await peers(
    "compute",
    (r) => times(3, async () => num((await runOn(r, compute))[1], "compute")),
  );
  rows.push({
    name: "compute loop, 200M xorshift steps (ms)",
    native: median(ca),
    qemu,
    gvisor,
    hermitux: median(cb),
  });
}

if (want("fileio")) {
  // File I/O in a mounted directory: 256 MiB each way, stat, open+close
  // (exitless, with rewritten sites: the fastest configuration).
  const fileio = await benchBinary("fileio");
  const dir = await Deno.makeTempDir({ prefix: "hermitux-bench-" });
  const args = ["256", "2000"];
  const fn = (await native(fileio, args, dir))[1];
  const fg = (await guest(fileio, args, { dir, rewrite: "lazy" }))[1];
  const peerOut = new Map<Runner, string | Error>();
  for (const r of PEERS) {
    try {
      if (!reason.get(r)) {
        peerOut.set(r, (await runOn(r, fileio, args, { cwd: dir, hostWrites: true }))[1]);
      }
    } catch (e) {
      peerOut.set(r, e as Error);
    }
  }
  await Deno.remove(dir, { recursive: true });
  const cellOf = (r: "qemu" | "gvisor", k: string): Promise<Cell> => {
    const out = peerOut.get(r);
    return peer(r, `fileio ${k}`, () => {
      if (out instanceof Error) throw out;
      return Promise.resolve(num(out ?? "", k));
    }, r === "gvisor" ? HOST_WRITES : undefined);
  };
  for (
    const [name, k] of [
      ["sequential write, 256 MiB (MB/s, higher is better)", "write"],
      ["sequential read, 256 MiB (MB/s, higher is better)", "read"],
      ["stat, exitless, rewritten (ns/op)", "stat"],
      ["open+close, exitless, rewritten (ns/op)", "open\\+close"],
    ]
  ) {
    rows.push({
      name,
      native: num(fn, k),
      qemu: await cellOf("qemu", k),
      gvisor: await cellOf("gvisor", k),
      hermitux: num(fg, k),
    });
  }
}

// Processes: each program times its own iterations and prints their median;
// a row is the median of RUNS such runs. hermitux runs them by exit (the
// default on this 2-CPU machine; after the first fork every process rings
// the doorbell anyway).
const targets: string[] = [];
if (want("proc")) {
  const RUNS = 3;
  const fork = await benchBinary("fork");
  const binDir = spawn.slice(0, spawn.lastIndexOf("/"));
  const mounts = [...SYSTEM, { host: binDir, guest: binDir, readOnly: true }];
  const target = (what: string, ms: number, got: number) =>
    targets.push(`${what} ≤ ${ms} ms: ${got.toFixed(2)} ms (${got <= ms ? "met" : "not met"})`);
  const progs: { name: string; short: string; ms: number; path: string; args: string[] }[] = [
    {
      name: "fork + _exit + waitpid, static",
      short: "fork+exit+wait",
      ms: 1,
      path: fork,
      args: [],
    },
    {
      name: "posix_spawn + waitpid of a static program",
      short: "spawn static",
      ms: 5,
      path: spawn,
      args: [spawn],
    },
    {
      name: "posix_spawn + waitpid of dynamic /bin/true",
      short: "spawn dynamic /bin/true",
      ms: 10,
      path: spawn,
      args: ["/bin/true"],
    },
    {
      name: "fork + _exit + waitpid after touching 100 MiB",
      short: "fork with 100 MB touched",
      ms: 30,
      path: fork,
      args: ["100"],
    },
  ];
  for (const { name, short, ms, path, args: more } of progs) {
    // fork COUNT [MiB], spawn COUNT PATH: each prints "fork|spawn <median> ms".
    const key = path === fork ? "fork" : "spawn", args = ["20", ...more];
    const run = (r: Runner) => async () => num((await runOn(r, path, args))[1], key);
    const inGuest = async () =>
      num((await guest(path, args, { mounts, hostCalls: "exit" }))[1], key);
    const row: Row = {
      name: `${name}, median of 20 (ms)`,
      native: await times(RUNS, run("native")),
      qemu: await peer(
        "qemu",
        name,
        () => times(RUNS, run("qemu")),
        key === "spawn" ? QEMU_EXEC : undefined,
      ),
      gvisor: await peer("gvisor", name, () => times(RUNS, run("gvisor"))),
      hermitux: await times(RUNS, inGuest),
    };
    rows.push(row);
    target(short, ms, row.hermitux);
  }

  // dash: a whole run, but in gVisor timed inside the sandbox.
  const sh = ["-c", "for i in $(seq 100); do /bin/true; done"];
  const env = { PATH: "/usr/bin:/bin" };
  const qemuSh = () => times(5, async () => (await runOn("qemu", "/bin/sh", sh))[0]);
  rows.push({
    name: "dash: sh -c 'for i in $(seq 100); do /bin/true; done', whole run (ms)",
    native: await times(5, async () => (await native("/bin/sh", sh))[0]),
    qemu: await peer("qemu", "dash", qemuSh, QEMU_EXEC),
    gvisor: await peer("gvisor", "dash", inSandbox("/bin/sh", sh, 3), IN_SANDBOX),
    hermitux: await times(
      3,
      async () => (await guest("/bin/sh", sh, { mounts, env, hostCalls: "exit" }))[0],
    ),
  });
}

// The platform's floor, from C: a bare guest's syscall trap and exit.
const probe = await benchBinary("kvm_probe", "gcc");
const floor = new TextDecoder().decode((await new Deno.Command(probe).output()).stdout);
const floorOf = (k: string) => Number(new RegExp(`${k} ([\\d.]+) ns`).exec(floor)?.[1]);
const version = async (cmd: string) => {
  try {
    const out = await new Deno.Command(cmd, { args: ["--version"], stderr: "null" }).output();
    return new TextDecoder().decode(out.stdout).split("\n")[0].trim();
  } catch {
    return `${cmd}: not installed`;
  }
};

const us = (k: string) => (floorOf(k) / 1000).toFixed(1);
const load = `${loadAtStart.toFixed(2)} at the start, ${Deno.loadavg()[0].toFixed(2)} at the end`;
const [qemuV, runscV] = [await version("qemu-x86_64"), await version("runsc")];
console.log(
  `KVM floor on this machine (bench/c/kvm_probe.c): syscall round trip ${us("syscall")} µs, ` +
    `MMIO exit round trip ${us("exit")} µs\n`,
);
console.log(
  `Load average ${load} (${navigator.hardwareConcurrency} CPUs). Peers: ${qemuV}; ${runscV}, ` +
    `platform ${GVISOR_PLATFORM} (\`runsc --rootless=false --network=none do\`). A peer has no ` +
    "transport or rewriting settings: its figure repeats in each variant of a row.\n",
);
for (const line of renderTable(rows)) console.log(line);
if (targets.length) console.log(`\nProcess targets, hermitux: ${targets.join("; ")}.`);
