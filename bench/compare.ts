// Native, qemu-user, gVisor and hermitux side by side in one run, as a
// Markdown table for docs/PERFORMANCE.md: dd through the host, host-served
// read/write on plain fds, redis GETs over loopback, the whole-process start
// of a static hello (beside an empty Deno script) and of python3, in-process
// boot() → exit, in-guest syscalls and signals, a compute loop, file I/O and
// processes. hermitux runs through its CLI with its default flags, and again
// with `--host-calls=exitless --rewrite=lazy` (the second hermitux column).
//
// Every row is measured the same way (common.ts `alternate`): one warm-up
// run of each runner, then several rounds of one run each, the order
// reversed every other round; the table gives medians, and ratios from the
// same run.
//
//   deno task bench:compare                      (runs bench/setup.sh first)
//   deno task bench:compare --quick              (3 rounds a row: ~half the time)
//   deno task bench:compare --only=dd,redis      (or COMPARE_ONLY=dd,redis)
//
// Sections: dd, io, redis, hello, python, boot, loop, compute, touch, fileio, proc.
import { boot } from "../mod.ts";
import { alternate, benchBinary, type Contender, devNull, type Metrics } from "./common.ts";
import {
  ALT_FLAGS,
  GVISOR_PLATFORM,
  killAll,
  type PeerOptions,
  type Runner,
  RUNNERS,
  runOn,
  unavailable,
} from "./peers.ts";
import { redisGet, redisMissing } from "./redis.ts";
import { type Cell, fmt, renderTable, type Row, valueOf } from "./table.ts";
import { fixture } from "../tests/fixtures.ts";

const SECTIONS = [
  "dd",
  "io",
  "redis",
  "hello",
  "python",
  "boot",
  "loop",
  "compute",
  "touch",
  "fileio",
  "proc",
];
const flag = (name: string) => Deno.args.find((a) => a.startsWith(`--${name}`));
const QUICK = flag("quick") !== undefined;
const ONLY = (flag("only")?.split("=")[1] ?? Deno.env.get("COMPARE_ONLY"))?.split(",");
for (const s of ONLY ?? []) {
  if (!SECTIONS.includes(s)) throw new Error(`unknown section '${s}' (${SECTIONS.join(", ")})`);
}
const want = (section: string) => !ONLY || ONLY.includes(section);
/** Rounds for a row: `n`, or 3 with --quick. */
const rounds = (n: number) => QUICK ? Math.min(n, 3) : n;

// Whatever happens, no server or guest outlives the bench.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, () => {
    killAll();
    Deno.exit(130);
  });
}
globalThis.addEventListener("unload", killAll);

const started = performance.now();
const loadAtStart = Deno.loadavg()[0];
const ignored = ["HERMITUX_REWRITE", "HERMITUX_HOST_CALLS"].filter((k) => Deno.env.get(k));
const num = (s: string, k: string) => Number(new RegExp(`${k} ([\\d.]+)`).exec(s)?.[1]);

// Why a runner cannot run here, if it cannot.
const reason = new Map<Runner, string | undefined>();
for (const r of RUNNERS) reason.set(r, r === "native" ? undefined : await unavailable(r));

/** Footnotes shared by rows. */
const NOTE = {
  sandbox: "A whole `runsc do` run: the sandbox's start (Sentry and Gofer) and teardown " +
    "included, as hermitux's figure includes Deno's and the VM's.",
  hostWrites: "`runsc do -force-overlay=false`: the file goes through the Gofer to the host's " +
    "directory (the default overlay would keep it in the sandbox's memory).",
  hostNet: "`runsc --rootless --network=host do`: the host's network stack (the sandbox's own " +
    "needs iptables and a veth); redis-benchmark runs natively against every server.",
  qemuExec: "qemu-user runs only the parent: a program it execs starts natively (qemu-x86_64 " +
    "passes execve to the host, and binfmt_misc has no entry for the host's own architecture).",
  nativeBoot: "Native: a fork + exec + wait of the static hello (bench/c/timed.c); qemu-user " +
    "and gVisor: their whole run of it; hermitux: `boot()` in this process, with no transport " +
    "or rewriting option (the library's defaults) and, in the second column, with both.",
  rss: "wait4's `ru_maxrss`: the kernel counts next to nothing for a process this short.",
  emptyDeno: "`deno run -A` of an empty file, in the native column: the reference of the " +
    "targets, measured in alternation with the row above it.",
};

/**
 * Measures one thing with every available runner (and `extra` contenders)
 * in alternation; `make(r)` gives runner `r`'s run (a closure may keep
 * state between runs, e.g. a count calibrated in the warm-up).
 */
async function measure(
  section: string,
  n: number,
  make: (r: Runner) => (warm: boolean) => Promise<Metrics>,
  extra: Contender[] = [],
): Promise<Map<string, Metrics | Error>> {
  const contenders = RUNNERS.filter((r) => !reason.get(r)).map((r) => ({ key: r, run: make(r) }));
  roundsOf.set(section, rounds(n));
  return await alternate([...contenders, ...extra], rounds(n));
}
/** The rounds each section ran, for the header. */
const roundsOf = new Map<string, number>();

/** The cells of `metric` (× `scale`), with a footnote for some runners. */
function cellsOf(
  res: Map<string, Metrics | Error>,
  metric: string,
  notes: Partial<Record<Runner, string>> = {},
  scale = 1,
): Partial<Record<Runner, Cell>> {
  const out: Partial<Record<Runner, Cell>> = {};
  for (const r of RUNNERS) {
    const why = reason.get(r), m = res.get(r);
    if (why) out[r] = { note: why };
    else if (m instanceof Error) out[r] = { note: m.message.replaceAll("|", "/").slice(0, 300) };
    else if (m) {
      const v = m[metric] * scale;
      out[r] = notes[r] ? { value: v, note: notes[r]! } : v;
    }
  }
  return out;
}

/** The figure of an extra contender, or NaN. */
const extraOf = (res: Map<string, Metrics | Error>, key: string, metric: string) => {
  const m = res.get(key);
  return m && !(m instanceof Error) ? m[metric] : NaN;
};

/** "TEXT: met (not met)": hermitux's default, then the alternative flags. */
function target(text: string, cells: Partial<Record<Runner, Cell>>, ok: (v: number) => boolean) {
  const say = (c: Cell) => {
    const v = valueOf(c);
    return v === undefined ? "—" : ok(v) ? "met" : "**not met**";
  };
  return `${text}: ${say(cells.hermitux)} (${say(cells.alt)})`;
}

const rows: Row[] = [];
function add(row: Row) {
  rows.push(row);
  const s = ((performance.now() - started) / 1000).toFixed(0);
  console.error(`bench:compare: ${s} s: ${row.name}`);
}

const hello = await fixture("hello", "musl-static");
const emptyScript = await Deno.makeTempFile({ prefix: "hermitux-bench-empty-", suffix: ".ts" });
/** The empty Deno script, as a contender beside a row. */
const emptyDeno: Contender = {
  key: "deno",
  run: async () => {
    const r = await runOn("native", Deno.execPath(), ["run", "-A", emptyScript], {
      env: { ...Deno.env.toObject() },
    });
    return { ms: r.ms, rss: r.rssMiB };
  },
};
const whole = (path: string, args: string[], o: PeerOptions = {}) => (r: Runner) => async () => {
  const res = await runOn(r, path, args, o);
  return { ms: res.ms, rss: res.rssMiB };
};

if (want("dd")) {
  const args = ["if=/dev/zero", "of=/dev/null", "bs=4k", "count=20000"];
  const res = await measure("dd", 3, (r) => async () => {
    const { ms, err } = await runOn(r, "/bin/dd", args);
    const m = /(\d+) bytes .* copied, ([\d.e+-]+) s/.exec(err);
    if (!m) throw new Error(`${r} dd: no summary: ${err.trim()}`);
    return { ms, mbs: Number(m[1]) / Number(m[2]) / 1e6 };
  });
  add({
    name: "`dd if=/dev/zero of=/dev/null bs=4k count=20000`, whole process (ms)",
    cells: cellsOf(res, "ms", { gvisor: NOTE.sandbox }),
  });
  const cells = cellsOf(res, "mbs");
  const qemu = valueOf(cells.qemu) ?? NaN;
  add({
    name: "same, throughput as dd reports it (MB/s, higher is better)",
    cells,
    target: target("≥ 25 % of qemu-user", cells, (v) => v >= 0.25 * qemu),
  });
}

if (want("io")) {
  // Host-served calls on plain fds, 1 B each. Each runner's count is set
  // by its warm-up run so that a run's loop takes ~0.1 s.
  const loop = await benchBinary("loop");
  const dir = await Deno.makeTempDir({ prefix: "hermitux-bench-io-" });
  const kinds = [
    ["null", "write to /dev/null"],
    ["file", "write, then read, a file"],
    ["pipe", "write + read through a pipe"],
    ["socket", "write + read through an AF_UNIX socketpair"],
  ] as const;
  const o = { cwd: dir, hostWrites: true };
  const res = await measure("io", 5, calibrated(loop, kinds.map(([k]) => k), o));
  for (const [kind, what] of kinds) {
    const cells = cellsOf(res, kind, kind === "file" ? { gvisor: NOTE.hostWrites } : {});
    add({
      name: `host-served ${what}, 1 B (ns/call)`,
      cells,
      target: target("≤ 3,000 ns", cells, (v) => v <= 3000),
    });
  }
  await Deno.remove(dir, { recursive: true });
}

/**
 * bench/c/loop.c's `kinds`, all in one run, each with a count its warm-up
 * run sets so that its loop takes ~0.1 s; ns/call for each kind.
 */
function calibrated(loop: string, kinds: string[], o: PeerOptions = {}) {
  return (r: Runner) => {
    const n = kinds.map(() => 2000);
    return async (warm: boolean) => {
      const list = kinds.map((k, i) => `${k}:${n[i]}`).join(",");
      const { err } = await runOn(r, loop, [list], o);
      const m: Metrics = {};
      for (const [i, k] of kinds.entries()) {
        const ns = Number(new RegExp(`^${k} ([\\d.]+) ns/call`, "m").exec(err)?.[1]);
        if (!Number.isFinite(ns)) throw new Error(`${r} loop ${k}: no figure`);
        if (warm) n[i] = Math.max(200, Math.min(500_000, Math.round(1e8 / Math.max(ns, 1))));
        m[k] = ns;
      }
      return m;
    };
  };
}

if (want("redis")) {
  const missing = redisMissing();
  const N = 50_000;
  // The warm-up asks for a tenth of the requests; a runner slower than
  // 50000 requests in 10 s then gets fewer (at least 10000), so that the
  // row does not take the run's whole time (the cell says so).
  const res = missing
    ? new Map<string, Error>(RUNNERS.map((r) => [r, new Error(missing)]))
    : await measure("redis", 3, (r) => {
      let n = N / 10;
      return async (warm) => {
        const rps = await redisGet(r, n);
        const ran = n;
        if (warm) n = Math.max(10_000, Math.min(N, Math.round(rps * 10 / 1000) * 1000));
        return { rps, n: ran };
      };
    });
  const notes: Partial<Record<Runner, string>> = { gvisor: NOTE.hostNet };
  for (const r of RUNNERS) {
    const m = res.get(r);
    if (m && !(m instanceof Error) && m.n < N) {
      notes[r] = `${notes[r] ? `${notes[r]} ` : ""}With \`-n ${m.n}\`: at its warm-up's ` +
        "rate, 50000 requests would have taken over 10 s.";
    }
  }
  const cells = cellsOf(res, "rps", notes);
  const native = valueOf(cells.native) ?? NaN;
  add({
    name: "redis-server, `redis-benchmark -t get -n 50000` over loopback (requests/s, higher " +
      "is better)",
    cells,
    target: target("≥ 50 % of native", cells, (v) => v >= 0.5 * native),
  });
}

if (want("hello")) {
  const res = await measure("hello", 10, whole(hello, []), [emptyDeno]);
  const ms = extraOf(res, "deno", "ms"), rss = extraOf(res, "deno", "rss");
  const time = cellsOf(res, "ms", { gvisor: NOTE.sandbox });
  add({
    name: "static hello (musl), whole process (ms)",
    cells: time,
    target: target(`≤ empty Deno + 15 ms (${fmt(ms + 15)})`, time, (v) => v <= ms + 15),
  });
  add({
    name: "empty Deno script, whole process (ms)",
    cells: { native: { value: ms, note: NOTE.emptyDeno } },
  });
  const mem = cellsOf(res, "rss", { native: NOTE.rss });
  add({
    name: "static hello (musl), whole process: peak RSS (MiB)",
    cells: mem,
    target: target(`≤ empty Deno + 15 MiB (${fmt(rss + 15)})`, mem, (v) => v <= rss + 15),
  });
  add({
    name: "empty Deno script: peak RSS (MiB)",
    cells: { native: { value: rss, note: NOTE.emptyDeno } },
  });
}

if (want("python")) {
  const res = await measure("python", 7, whole("/usr/bin/python3", ["-c", "pass"]), [emptyDeno]);
  const cells = cellsOf(res, "ms", { gvisor: NOTE.sandbox });
  const deno = extraOf(res, "deno", "ms"), native = valueOf(cells.native) ?? NaN;
  const limit = deno + 3 * native;
  add({
    name: "`python3 -c pass`, whole process (ms)",
    cells,
    target: target(`≤ empty Deno + 3× native (${fmt(limit)})`, cells, (v) => v <= limit),
  });
  add({
    name: "empty Deno script, whole process (ms)",
    cells: { native: { value: deno, note: NOTE.emptyDeno } },
  });
}

if (want("boot")) {
  // In this process: boot() with the library's defaults, and with the
  // alternative transport and rewriting.
  const nul = devNull();
  const stdio: [number, number, number] = [0, nul, nul];
  const inProcess = async (alt: boolean) => {
    const t0 = performance.now();
    const r = await boot(
      alt ? { path: hello, stdio, hostCalls: "exitless", rewrite: "lazy" } : { path: hello, stdio },
    );
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`boot: status ${r.status}`);
    return { ms };
  };
  for (let i = 0; i < 3; i++) await inProcess(false), await inProcess(true); // dlopen, kernel image, JIT
  const res = await measure("boot", 30, (r) => {
    if (r === "hermitux" || r === "alt") return () => inProcess(r === "alt");
    return whole(hello, [])(r);
  });
  const cells = cellsOf(res, "ms", { native: NOTE.nativeBoot, gvisor: NOTE.sandbox });
  add({
    name: "in-process `boot()` → exit, static hello (ms)",
    cells,
    target: target("≤ 2 ms", cells, (v) => v <= 2),
  });
}

if (want("loop")) {
  const loop = await benchBinary("loop");
  const res = await measure("loop", 5, calibrated(loop, ["getpid", "signal"]));
  const getpid = cellsOf(res, "getpid");
  const native = valueOf(getpid.native) ?? NaN;
  add({
    name: "in-guest syscall, getpid (ns/call)",
    cells: getpid,
    target: target("≤ 0.5× native (rewritten)", getpid, (v) => v <= 0.5 * native),
  });
  add({
    name: "signal to itself: tgkill, handler, rt_sigreturn (ns)",
    cells: cellsOf(res, "signal"),
  });
}

if (want("compute")) {
  const compute = await benchBinary("compute");
  // The same run under --profile at its default 99 Hz, beside hermitux's own.
  const svg = await Deno.makeTempFile({ prefix: "hermitux-bench-profile-", suffix: ".svg" });
  const profiled: Contender = {
    key: "profiled",
    run: async () => ({
      ms: num(
        (await runOn("hermitux", compute, [], { flags: [`--profile=${svg}`] })).err,
        "compute",
      ),
    }),
  };
  const res = await measure("compute", 3, (r) => async () => ({
    ms: num((await runOn(r, compute)).err, "compute"),
  }), [profiled]);
  const cells = cellsOf(res, "ms");
  const native = valueOf(cells.native) ?? NaN;
  add({
    name: "compute loop, 200M xorshift steps (ms)",
    cells,
    target: target("≤ 1.03× native", cells, (v) => v <= 1.03 * native),
  });
  const plain = valueOf(cells.hermitux) ?? NaN, withProfile = extraOf(res, "profiled", "ms");
  add({
    name: "the same under `--profile` (99 Hz) (ms)",
    cells: { hermitux: withProfile },
    target: `profiler overhead ${((withProfile / plain - 1) * 100).toFixed(1)} % (target ≤ 5 %)`,
  });
}

if (want("touch")) {
  // First touch of 1 GiB, 4 KiB apart: in RAM (hermitux --mem 2G, so it
  // fits there), and MAP_NORESERVE, which hermitux places above RAM and
  // backs a 2 MiB chunk per fault (docs/MEMORY.md).
  const touch = await benchBinary("touch");
  for (const [what, extra] of [["", []], [", MAP_NORESERVE (above RAM)", ["noreserve"]]] as const) {
    const res = await measure(`touch${extra.length ? "-high" : ""}`, 3, (r) => async () => ({
      ms: num(
        (await runOn(r, touch, ["1024", ...extra], { flags: ["--mem", "2G"] })).err,
        "touch",
      ),
    }));
    const cells = cellsOf(res, "ms");
    add({ name: `first touch of 1 GiB, 4 KiB stride${what} (ms)`, cells });
  }
}

if (want("fileio")) {
  // In a host directory (hermitux: mounted read-write, as the CLI's
  // current directory is by default): 256 MiB each way, stat, open+close.
  const fileio = await benchBinary("fileio");
  const dir = await Deno.makeTempDir({ prefix: "hermitux-bench-" });
  const args = [QUICK ? "64" : "256", "2000"];
  const res = await measure("fileio", 3, (r) => async () => {
    const { err } = await runOn(r, fileio, args, { cwd: dir, hostWrites: true });
    return {
      write: num(err, "write"),
      read: num(err, "read"),
      stat: num(err, "stat"),
      open: num(err, "open\\+close"),
    };
  });
  await Deno.remove(dir, { recursive: true });
  const mib = args[0];
  for (
    const [name, k] of [
      [`sequential write, ${mib} MiB, 1 MiB writes + fsync (MB/s, higher is better)`, "write"],
      [`sequential read, ${mib} MiB, 1 MiB reads (MB/s, higher is better)`, "read"],
      ["stat (ns/op)", "stat"],
      ["open+close (ns/op)", "open"],
    ]
  ) add({ name, cells: cellsOf(res, k, { gvisor: NOTE.hostWrites }) });
}

if (want("proc")) {
  // Each program times its own 20 iterations and prints their median.
  const spawn = await benchBinary("spawn");
  const fork = await benchBinary("fork");
  const binDir = spawn.slice(0, spawn.lastIndexOf("/"));
  const o = { flags: ["--mount", `${binDir}:${binDir}:ro`] };
  const progs = [
    ["fork + _exit + waitpid, static", 1, fork, []],
    ["posix_spawn + waitpid of a static program", 5, spawn, [spawn]],
    ["posix_spawn + waitpid of dynamic /bin/true", 10, spawn, ["/bin/true"]],
    ["fork + _exit + waitpid after touching 100 MiB", 30, fork, ["100"]],
  ] as const;
  for (const [name, ms, path, more] of progs) {
    const key = path === fork ? "fork" : "spawn";
    const res = await measure("proc", 3, (r) => async () => ({
      ms: num((await runOn(r, path, ["20", ...more], o)).err, key),
    }));
    const cells = cellsOf(res, "ms", key === "spawn" ? { qemu: NOTE.qemuExec } : {});
    add({
      name: `${name}, median of 20 (ms)`,
      cells,
      target: target(`≤ ${ms} ms`, cells, (v) => v <= ms),
    });
  }
  const sh = ["-c", "for i in $(seq 100); do /bin/true; done"];
  const res = await measure(
    "proc",
    3,
    whole("/bin/sh", sh, { ...o, env: { PATH: "/usr/bin:/bin" } }),
  );
  add({
    name: "dash: `sh -c 'for i in $(seq 100); do /bin/true; done'`, whole process (ms)",
    cells: cellsOf(res, "ms", { qemu: NOTE.qemuExec, gvisor: NOTE.sandbox }),
  });
}
await Deno.remove(emptyScript);

// The header: the machine, the platform's floor (from C), the peers, and
// the defaults hermitux chose (its CLI says, with --verbose).
const text = async (cmd: string, args: string[]) => {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  } catch {
    return `${cmd}: not installed`;
  }
};
const probe = await benchBinary("kvm_probe", "gcc");
const floor = await text(probe, []);
const us = (k: string) =>
  (Number(new RegExp(`${k} ([\\d.]+) ns`).exec(floor)?.[1]) / 1000).toFixed(1);
const verbose = await runOn("hermitux", hello, [], { flags: ["--verbose"] })
  .then((r) => r.err.split("\n").filter((l) => /^hermitux:/.test(l) && !/^hermitux: stats/.test(l)))
  .catch((e) => [`(run --verbose failed: ${(e as Error).message})`]);
const root = new URL("..", import.meta.url).pathname;
const commit = (await text("git", ["-C", root, "log", "-1", "--format=%h %s"])).trim();
const first = (s: string) => s.split("\n")[0].trim();
const minutes = ((performance.now() - started) / 60000).toFixed(1);
console.log(
  `hermitux at \`${commit.slice(0, 100)}\`, ${new Date().toISOString().slice(0, 16)} UTC; ` +
    `${navigator.hardwareConcurrency} CPUs, load average ${loadAtStart.toFixed(2)} at the ` +
    `start and ${Deno.loadavg()[0].toFixed(2)} at the end of this ${minutes}-minute run` +
    `${QUICK ? " (--quick)" : ""}.\n`,
);
console.log(
  `KVM floor (bench/c/kvm_probe.c): a \`syscall\` round trip ${us("syscall")} µs, an MMIO ` +
    `exit round trip ${us("exit")} µs.\n`,
);
console.log(
  `Peers: ${first(await text("qemu-x86_64", ["--version"]))}; ` +
    `${first(await text("runsc", ["--version"]))}, platform ${GVISOR_PLATFORM} ` +
    "(`runsc --rootless=false --network=none do`); redis " +
    `${/v=(\S+)/.exec(await text("redis-server", ["--version"]))?.[1] ?? "not installed"}.\n`,
);
console.log(
  "hermitux: the CLI (`deno run -A cli.ts run BIN`) with its default flags; `run --verbose` " +
    `said: ${verbose.map((l) => `\`${l.trim()}\``).join(", ")}. The second hermitux column ` +
    `adds \`${ALT_FLAGS.join(" ")}\`.${
      ignored.length ? ` (${ignored.join(" and ")} set in this shell: not passed on.)` : ""
    }\n`,
);
console.log(
  "Each row: one warm-up run of every runner, then rounds of one run each, in alternating " +
    `order (forwards, backwards); medians (rounds: ${
      [...roundsOf].map(([k, v]) => `${k} ${v}`).join(", ")
    }). Ratios: hermitux's figure over the peer's, the second ` +
    "column's in parentheses; the target column says whether hermitux meets the issue's target " +
    "with its defaults (and with the second column's flags).\n",
);
for (const line of renderTable(rows, `hermitux \`${ALT_FLAGS.join(" ")}\``)) console.log(line);
