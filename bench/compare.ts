// Native and hermitux side by side in one run: boot → exit, syscall
// latency (in-guest and host-served), python3 start-up, a compute loop,
// file I/O. Prints a table of medians and hermitux/native ratios
// (Markdown, for the README).
import { boot, type HostCalls } from "../mod.ts";
import { benchBinary, devNull } from "./common.ts";
import { fixture } from "../tests/fixtures.ts";

const nul = devNull();
const stdio: [number, number, number] = [0, nul, nul];
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function native(path: string, args: string[] = [], cwd?: string): Promise<[number, string]> {
  const t0 = performance.now();
  const r = await new Deno.Command(path, { args, cwd, stdout: "null", stderr: "piped" }).output();
  return [performance.now() - t0, new TextDecoder().decode(r.stderr)];
}

async function guest(
  path: string,
  args: string[] = [],
  dir?: string,
  rewrite: "off" | "lazy" = "off",
  hostCalls: HostCalls = "exitless",
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
  const mounts = dir ? [{ host: dir, guest: "/work", readOnly: false }] : [];
  await boot({ path, args, stdio, registry, mounts, cwd: dir ? "/work" : "/", rewrite, hostCalls });
  return [performance.now() - t0, err.join("")];
}

const perCall = (s: string) => Number(/([\d.]+) ns\/call/.exec(s)?.[1]);
const ms = (s: string) => Number(/compute ([\d.]+) ms/.exec(s)?.[1]);
const rows: [string, number, number, string][] = [];

const hello = await fixture("hello", "musl-static");
for (let i = 0; i < 3; i++) await guest(hello); // warm-up: dlopen, kernel image
for (const hostCalls of ["exit", "exitless"] as const) {
  const bootN = [], bootH = [];
  for (let i = 0; i < 30; i++) {
    bootN.push((await native(hello))[0]);
    bootH.push((await guest(hello, [], undefined, "off", hostCalls))[0]);
  }
  rows.push([`boot → exit, static hello, ${hostCalls} (ms)`, median(bootN), median(bootH), "ms"]);
}

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
      b.push(perCall((await guest(loop, [kind, String(n)], undefined, rewrite, hostCalls))[1]));
    }
    const what = kind === "getpid"
      ? "in-guest syscall (getpid)"
      : kind === "signal"
      ? `signal to itself (tgkill, handler, rt_sigreturn), ${hostCalls}`
      : `host-served syscall (write 1 B), ${hostCalls}`;
    const how = rewrite === "off" ? "syscall trap" : "rewritten site";
    rows.push([`${what}, ${how} (ns/call)`, median(a), median(b), "ns"]);
  }
}

// python3 start-up (dynamic: ld.so and its libraries through read-only system mounts).
const SYSTEM = ["/usr", "/lib", "/lib64", "/etc", "/bin"]
  .filter((d) => Deno.statSync(d).isDirectory)
  .map((d) => ({ host: d, guest: d, readOnly: true }));
for (const [hostCalls, rewrite] of [["exit", "off"], ["exitless", "lazy"]] as const) {
  const pn: number[] = [], ph: number[] = [];
  for (let i = 0; i < 10; i++) {
    pn.push((await native("/usr/bin/python3", ["-c", "pass"]))[0]);
    const t0 = performance.now();
    await boot({
      path: "/usr/bin/python3",
      args: ["-c", "pass"],
      stdio,
      mounts: SYSTEM,
      cwd: "/",
      rewrite,
      hostCalls,
    });
    ph.push(performance.now() - t0);
  }
  const how = hostCalls === "exit" ? "exit" : "exitless, rewritten";
  rows.push([`python3 -c pass start-up, ${how} (ms)`, median(pn), median(ph), "ms"]);
}

const compute = await benchBinary("compute");
const ca: number[] = [], cb: number[] = [];
for (let i = 0; i < 3; i++) {
  ca.push(ms((await native(compute))[1]));
  cb.push(ms((await guest(compute))[1]));
}
rows.push(["compute loop, 200M xorshift steps (ms)", median(ca), median(cb), "ms"]);

// File I/O in a mounted directory: 256 MiB each way, stat, open+close
// (exitless, with rewritten sites: the fastest configuration).
const fileio = await benchBinary("fileio");
const dir = await Deno.makeTempDir({ prefix: "hermitux-bench-" });
const num = (s: string, k: string) => Number(new RegExp(`${k} ([\\d.]+)`).exec(s)?.[1]);
const [fn, fg] = [
  (await native(fileio, ["256", "2000"], dir))[1],
  (await guest(fileio, ["256", "2000"], dir, "lazy"))[1],
];
await Deno.remove(dir, { recursive: true });
rows.push([
  "sequential write, 256 MiB (MB/s, higher is better)",
  num(fn, "write"),
  num(fg, "write"),
  "MB/s",
]);
rows.push([
  "sequential read, 256 MiB (MB/s, higher is better)",
  num(fn, "read"),
  num(fg, "read"),
  "MB/s",
]);
rows.push(["stat, exitless, rewritten (ns/op)", num(fn, "stat"), num(fg, "stat"), "ns"]);
rows.push([
  "open+close, exitless, rewritten (ns/op)",
  num(fn, "open\\+close"),
  num(fg, "open\\+close"),
  "ns",
]);

// The platform's floor, from C: a bare guest's syscall trap and exit.
const probe = await benchBinary("kvm_probe", "gcc");
const floor = new TextDecoder().decode((await new Deno.Command(probe).output()).stdout);
const floorOf = (k: string) => Number(new RegExp(`${k} ([\\d.]+) ns`).exec(floor)?.[1]);

console.log(
  `KVM floor on this machine (bench/c/kvm_probe.c): syscall round trip ${
    (floorOf("syscall") / 1000).toFixed(1)
  } µs, MMIO exit round trip ${(floorOf("exit") / 1000).toFixed(1)} µs\n`,
);
console.log("| measure | native | hermitux | hermitux/native |");
console.log("|---|---:|---:|---:|");
for (const [name, n, h] of rows) {
  console.log(`| ${name} | ${n.toFixed(2)} | ${h.toFixed(2)} | ${(h / n).toFixed(2)}× |`);
}
