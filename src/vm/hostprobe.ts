/**
 * The host probe: what a VM exit and a `syscall` trap cost on this host,
 * measured once by a tiny guest and kept in a cache, so the defaults for
 * host calls (exitless.ts `defaultHostCalls`) and rewriting (rewrite.ts
 * `resolveRewrite`) follow the host rather than its kind of KVM alone
 * (docs/TRANSPORT.md). The guest is a static ELF written here in bytes (no
 * compiler at run time): it times batches of `getpid` (answered by the
 * guest kernel: one trap each) and of `getpgrp` (answered by the host: one
 * exit each, with `hostCalls: "exit"`) with the guest kernel's
 * `clock_gettime`, and writes the clock readings to a piped stdout.
 *
 * The cache is JSON in `HERMITUX_CACHE_DIR`, `$XDG_CACHE_HOME/hermitux` or
 * `~/.cache/hermitux`, one file per {@linkcode HostKey}: what makes a
 * measurement stale. Without a writable directory the measurement is kept
 * in memory for the process. `HERMITUX_HOST_PROBE=off` skips the probe:
 * the defaults then follow the platform and the CPU count.
 * @module
 */
import { cacheDir, cacheHash, writeCacheFile } from "../cachedir.ts";
import { detectPlatform, type Platform } from "../kvm/platform.ts";

/** Bumped when what the probe measures, or how, changes: older files are then ignored. */
export const PROBE_VERSION = 1;

/**
 * A host call by exit cheaper than this counts as cheap: polling would save
 * too little to pay for the core it takes. What the probe times is the
 * whole call: the exit (1-2 µs on hardware KVM, 28-100 µs on kvm_pvm) and
 * hermitux serving it in JavaScript (4-8 µs, timed around `onExit` on the
 * kvm_pvm development machine). So hardware KVM comes to about 5-10 µs,
 * kvm_pvm to 35 µs and more (57-90 µs there).
 */
export const CHEAP_EXIT_US = 20;

/**
 * A `syscall` trap at least this dear makes `stub` rewriting pay. Traps
 * measured: ~0.1 µs on hardware KVM, 0.9 µs on one kvm_pvm host, 13-34 µs
 * on others. A site is rewritten after its second trap, at the price of a
 * host call and up to ~0.1 ms of decoding: at 1 µs a trap the site must run
 * a hundred times more to repay that, at 15 µs a handful.
 */
export const COSTLY_TRAP_US = 3;

/** What makes a measurement stale: a cache file answers for one key only. */
export interface HostKey {
  /** {@linkcode PROBE_VERSION} when measured. */
  version: number;
  /** The host kernel's release (`uname -r`). */
  kernel: string;
  /** The CPU's model name (/proc/cpuinfo). */
  cpu: string;
  /** The kind of KVM. */
  platform: Platform;
  /** Host CPUs this process may use. */
  cpus: number;
}

/** What the probe measured, in microseconds (medians of batches). */
export interface HostMeasurement {
  /** A host call by VM exit: the exit, the round trip and a trivial handler. */
  exitUs: number;
  /** A `syscall` trap into the guest kernel and back (it answers `getpid` itself). */
  trapUs: number;
}

/** A measurement of this host, with where it came from. */
export interface HostProfile extends HostMeasurement {
  /** The host it is for. */
  key: HostKey;
  /** When it was measured (ISO 8601). */
  measuredAt: string;
  /** The cache file that holds it; undefined when it lives in memory only. */
  path?: string;
  /** Measured by this process (not read from the cache). */
  fresh: boolean;
}

/** This host's {@linkcode HostKey}, for `platform` (default: detected). */
export function hostKey(platform: Platform = detectPlatform()): HostKey {
  let cpu = "unknown";
  try {
    cpu = /^model name\s*:\s*(.*)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? cpu;
  } catch { /* no /proc: the other fields still tell hosts apart */ }
  const cpus = navigator.hardwareConcurrency;
  return { version: PROBE_VERSION, kernel: Deno.osRelease(), cpu, platform, cpus };
}

// The probe guest: x86-64 code with labels, assembled into a one-segment ELF.
const BATCHES = 8, TRAPS = 48, EXITS = 24;
const BASE = 0x400000, CODE = 64 + 56; // ELF header, one program header
const NR_GETPID = 39, NR_GETPGRP = 111, NR_CLOCK_GETTIME = 228, NR_WRITE = 1;
const NR_EXIT_GROUP = 231, STAMPS = 2 * BATCHES + 1;

function probeElf(): Uint8Array {
  const code: number[] = [], labels = new Map<string, number>();
  const fixups: { at: number; label: string; size: 1 | 4 }[] = [];
  const u32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];
  const op = (...bytes: number[]) => code.push(...bytes);
  const rel = (label: string, size: 1 | 4) => {
    fixups.push({ at: code.length, label, size });
    code.push(...new Array(size).fill(0));
  };
  const label = (name: string) => labels.set(name, code.length);
  const loop = (name: string, nr: number, count: number) => {
    op(0x41, 0xbc, ...u32(BATCHES)); // mov $BATCHES, %r12d
    label(`${name}_outer`);
    op(0x41, 0xbd, ...u32(count)); // mov $count, %r13d
    label(`${name}_inner`);
    op(0xb8, ...u32(nr), 0x0f, 0x05); // mov $nr, %eax; syscall
    op(0x41, 0xff, 0xcd, 0x75), rel(`${name}_inner`, 1); // dec %r13d; jnz
    op(0xe8), rel("stamp", 4); // call stamp
    op(0x41, 0xff, 0xcc, 0x75), rel(`${name}_outer`, 1); // dec %r12d; jnz
  };
  op(0x4c, 0x8d, 0x35), rel("buf", 4); // lea buf(%rip), %r14
  op(0xe8), rel("stamp", 4);
  loop("trap", NR_GETPID, TRAPS);
  loop("exit", NR_GETPGRP, EXITS);
  op(0xb8, ...u32(NR_WRITE), 0xbf, ...u32(1)); // write(1, buf, STAMPS * 16)
  op(0x48, 0x8d, 0x35), rel("buf", 4);
  op(0xba, ...u32(STAMPS * 16), 0x0f, 0x05);
  op(0xb8, ...u32(NR_EXIT_GROUP), 0x31, 0xff, 0x0f, 0x05); // exit_group(0)
  label("stamp"); // clock_gettime(CLOCK_MONOTONIC, %r14); %r14 += 16
  op(0xb8, ...u32(NR_CLOCK_GETTIME), 0xbf, ...u32(1), 0x4c, 0x89, 0xf6, 0x0f, 0x05);
  op(0x49, 0x83, 0xc6, 0x10, 0xc3);
  labels.set("buf", (code.length + 15) & ~15);
  for (const f of fixups) {
    const d = labels.get(f.label)! - (f.at + f.size);
    code.splice(f.at, f.size, ...(f.size === 1 ? [d & 0xff] : u32(d)));
  }
  const file = new Uint8Array(CODE + code.length), v = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]); // ELF, 64-bit, little-endian, version 1
  const memsz = CODE + labels.get("buf")! + STAMPS * 16;
  // [offset, size, value]: ET_EXEC for x86-64, the entry, one PT_LOAD (rwx) of the whole file.
  // deno-fmt-ignore
  const fields = [
    [16, 2, 2], [18, 2, 0x3e], [20, 4, 1], [24, 8, BASE + CODE], [32, 8, 64], [52, 2, 64],
    [54, 2, 56], [56, 2, 1], [64, 4, 1], [68, 4, 7], [80, 8, BASE], [88, 8, BASE],
    [96, 8, file.length], [104, 8, memsz], [112, 8, 0x1000],
  ];
  for (const [at, size, n] of fields) {
    if (size === 8) v.setBigUint64(at, BigInt(n), true);
    else if (size === 4) v.setUint32(at, n, true);
    else v.setUint16(at, n, true);
  }
  file.set(code, CODE);
  return file;
}

const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];

/**
 * Measures this host (~30-60 ms: a boot and a few hundred calls). Throws
 * when the guest cannot run (no KVM).
 */
export async function measureHost(): Promise<HostMeasurement> {
  const { boot } = await import("./vm.ts"); // vm.ts imports this module
  // Only calls the npm package's Deno shim (npm/shim) has, here and below.
  const tmp = Deno.makeTempDirSync({ prefix: "hermitux-probe-" }), path = `${tmp}/probe`;
  let out: Uint8Array = new Uint8Array();
  try {
    Deno.writeFileSync(path, probeElf(), { mode: 0o700 });
    // Explicit transport and rewriting: this boot never asks for a profile.
    const r = await boot({
      path,
      hostCalls: "exit",
      rewrite: "off",
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      timeout: 10,
    });
    out = r.stdout ?? out;
    if (r.status !== 0 || out.length !== STAMPS * 16) {
      throw new Error(`hermitux: the host probe ended with status ${r.status}`);
    }
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
  const v = new DataView(out.buffer, out.byteOffset, out.length);
  const t = Array.from(
    { length: STAMPS },
    (_, i) =>
      Number(v.getBigInt64(i * 16, true)) * 1e6 + Number(v.getBigInt64(i * 16 + 8, true)) / 1e3,
  );
  // Each batch holds its calls and one clock_gettime trap.
  const traps = t.slice(1, BATCHES + 1).map((x, i) => (x - t[i]) / (TRAPS + 1));
  const trapUs = median(traps);
  const exits = t.slice(BATCHES + 1).map((x, i) => (x - t[BATCHES + i] - trapUs) / EXITS);
  const round = (x: number) => Math.max(0.01, Math.round(x * 100) / 100);
  return { exitUs: round(median(exits)), trapUs: round(trapUs) };
}

/** The cache file for `key` in `dir`. */
export function profilePath(dir: string, key: HostKey): string {
  return `${dir}/host-v${key.version}-${key.platform}-${cacheHash(JSON.stringify(key))}.json`;
}

function readProfile(path: string, key: HostKey): HostProfile | undefined {
  try {
    const p = JSON.parse(Deno.readTextFileSync(path));
    const pos = (n: unknown) => typeof n === "number" && n > 0 && n < 1e6;
    const { exitUs, trapUs, measuredAt } = p ?? {};
    if (
      typeof p?.key !== "object" || p.key === null || !pos(exitUs) || !pos(trapUs) ||
      typeof measuredAt !== "string" ||
      (Object.keys(key) as (keyof HostKey)[]).some((k) => p.key[k] !== key[k])
    ) return undefined;
    return { key, exitUs, trapUs, measuredAt, path, fresh: false };
  } catch {
    return undefined; // none yet, unreadable or not JSON: measure again
  }
}

/**
 * This host's profile: read from the cache in `dir` (default: the cache
 * directory, see the module) when a file there matches `key`, else
 * measured and written (a temporary file, then a rename, so processes that
 * measure at once never see half a file; the last one wins). Without a
 * writable directory the result has no `path`.
 */
export async function loadHostProfile(
  key: HostKey = hostKey(),
  dir: string | undefined = cacheDir(),
): Promise<HostProfile> {
  const path = dir ? profilePath(dir, key) : undefined;
  const cached = path ? readProfile(path, key) : undefined;
  if (cached) return cached;
  const m = await measureHost();
  const p: HostProfile = { key, ...m, measuredAt: new Date().toISOString(), fresh: true };
  if (!path) return p;
  try {
    const { key: k, exitUs, trapUs, measuredAt } = p;
    writeCacheFile(path, JSON.stringify({ key: k, exitUs, trapUs, measuredAt }) + "\n");
    return { ...p, path };
  } catch {
    return p; // a read-only home: keep it in memory
  }
}

let memo: Promise<HostProfile | undefined> | undefined;
let known: HostProfile | undefined;

/** Whether `HERMITUX_HOST_PROBE=off` turned the probe off. */
function probeOff(): boolean {
  try {
    return Deno.env.get("HERMITUX_HOST_PROBE") === "off";
  } catch {
    return false; // no --allow-env
  }
}

/**
 * This host's profile, once per process ({@linkcode loadHostProfile} the
 * first time); undefined when `HERMITUX_HOST_PROBE=off` or the probe
 * failed (then the platform's rules apply).
 */
export function hostProfile(): Promise<HostProfile | undefined> {
  if (probeOff()) return Promise.resolve(undefined);
  return memo ??= loadHostProfile().then((p) => known = p, () => undefined);
}

/**
 * The profile {@linkcode hostProfile} resolved to, if it did and it is for
 * `platform`: what the synchronous parts of boot use.
 */
export function knownHostProfile(platform: Platform): HostProfile | undefined {
  return known && !probeOff() && known.key.platform === platform ? known : undefined;
}

/** `x` µs as `run --verbose` says it: whole above 10, else to a tenth. */
export function us(x: number): string {
  return `${x >= 10 ? Math.round(x) : Math.round(x * 10) / 10} µs`;
}

/** How the profile reads in `run --verbose`: the numbers and where they are kept. */
export function describeProfile(p: HostProfile): string {
  const where = p.path
    ? `${p.fresh ? "measured now, cached" : `cached ${p.measuredAt.slice(0, 10)}`} in ${p.path}`
    : "measured now, not cached";
  return `measured on this host: an exit ${us(p.exitUs)}, a syscall trap ${us(p.trapUs)}, ` +
    `${p.key.cpus} CPU${p.key.cpus === 1 ? "" : "s"}; ${where}`;
}
