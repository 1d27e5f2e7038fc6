// Robustness: mutated executables (ELF header, program headers, PT_INTERP,
// the dynamic section, truncations) end with a one-line error and the
// documented status, a guest crash report or a normal run, never a host
// exception; many boots in one process stay correct and leak nothing.
//
//   ROBUST_MUTATIONS=10000 ROBUST_CLI_MUTATIONS=500 ROBUST_SEED=7 deno test -A tests/robust_test.ts
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { boot, dropSpareMemory, ElfError, parseElf } from "../mod.ts";
import { PT_DYNAMIC, PT_INTERP } from "../src/loader/elf.ts";
import { libc } from "../src/kvm/libc.ts";
import { fixture, hermituxCommand, runNative } from "./fixtures.ts";

const env = (k: string, d: number) => Number(Deno.env.get(k) ?? d);
/** In-process mutations (the loader code the CLI runs) and those through cli.ts. */
const MUTATIONS = env("ROBUST_MUTATIONS", 1000);
const CLI_MUTATIONS = env("ROBUST_CLI_MUTATIONS", 40);
const SEED = env("ROBUST_SEED", 0x5eed);

/** mulberry32: a small seeded PRNG, so that a failure reproduces from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KINDS = ["ehdr", "phdr", "interp", "dynamic", "truncate"] as const;
type Kind = typeof KINDS[number];

/** One mutated executable: what was done, and its bytes. */
interface Mutant {
  seed: number;
  kind: Kind;
  what: string;
  bytes: Uint8Array;
}

/** Values that break parsers: edges, powers of two, near the original. */
function interesting(rand: () => number, orig: bigint, size: number, bits: 16 | 32 | 64): bigint {
  const mask = (1n << BigInt(bits)) - 1n;
  const picks = [
    0n,
    1n,
    mask,
    mask >> 1n,
    1n << BigInt(bits - 1),
    orig + 1n,
    orig - 1n,
    orig + 0x1000n,
    orig ^ (1n << BigInt(Math.floor(rand() * bits))),
    BigInt(size),
    BigInt(size) - 1n,
    BigInt(Math.floor(rand() * size)),
    BigInt(Math.floor(rand() * 2 ** 32)) << BigInt(bits === 64 ? Math.floor(rand() * 32) : 0),
    ...(bits === 64
      ? [1n << 53n, (1n << 53n) - 1n, 1n << 32n, 0x40000000n, 0x7fff_ffff_f000n]
      : []),
    ...(bits === 16 ? [56n, 64n, 0xffffn] : []),
  ];
  return picks[Math.floor(rand() * picks.length)] & mask;
}

function put(v: DataView, off: number, bits: 16 | 32 | 64, x: bigint) {
  if (off + bits / 8 > v.byteLength) return;
  if (bits === 16) v.setUint16(off, Number(x), true);
  else if (bits === 32) v.setUint32(off, Number(x), true);
  else v.setBigUint64(off, x, true);
}
function get(v: DataView, off: number, bits: 16 | 32 | 64): bigint {
  if (off + bits / 8 > v.byteLength) return 0n;
  if (bits === 16) return BigInt(v.getUint16(off, true));
  if (bits === 32) return BigInt(v.getUint32(off, true));
  return v.getBigUint64(off, true);
}

const EHDR_FIELDS: [string, number, 16 | 32 | 64][] = [
  ["e_ident[EI_CLASS..]", 4, 32],
  ["e_ident[EI_OSABI..]", 7, 64],
  ["e_type", 16, 16],
  ["e_machine", 18, 16],
  ["e_version", 20, 32],
  ["e_entry", 24, 64],
  ["e_phoff", 32, 64],
  ["e_shoff", 40, 64],
  ["e_flags", 48, 32],
  ["e_ehsize", 52, 16],
  ["e_phentsize", 54, 16],
  ["e_phnum", 56, 16],
  ["e_shentsize", 58, 16],
  ["e_shnum", 60, 16],
  ["e_shstrndx", 62, 16],
];
const PHDR_FIELDS: [string, number, 16 | 32 | 64][] = [
  ["p_type", 0, 32],
  ["p_flags", 4, 32],
  ["p_offset", 8, 64],
  ["p_vaddr", 16, 64],
  ["p_paddr", 24, 64],
  ["p_filesz", 32, 64],
  ["p_memsz", 40, 64],
  ["p_align", 48, 64],
];

/** Interpreter paths to write into PT_INTERP (`SELF` is the mutant's own path). */
const INTERPS = [
  "/nonexistent/ld.so",
  "/tmp",
  "/etc/passwd",
  "/bin/true",
  "/dev/null",
  "/dev/zero",
  "SELF",
  "",
  "relative/ld.so",
  "/lib64/../lib64/ld-linux-x86-64.so.2",
  "/" + "x".repeat(300),
];

/**
 * `orig` with PT_INTERP naming `interp`: written over the string when it
 * fits, else appended to the file and the segment moved there.
 */
function withInterp(orig: Uint8Array, interp: string): Uint8Array {
  const elf = parseElf(orig);
  const i = elf.segments.findIndex((s) => s.type === PT_INTERP);
  const s = elf.segments[i], ph = elf.phoff + i * elf.phentsize;
  const text = new TextEncoder().encode(interp + "\0");
  const fits = text.length <= s.filesz;
  const bytes = new Uint8Array(orig.length + (fits ? 0 : text.length));
  bytes.set(orig);
  const v = new DataView(bytes.buffer);
  if (fits) bytes.fill(0, s.offset, s.offset + s.filesz);
  else v.setBigUint64(ph + 8, BigInt(orig.length), true);
  bytes.set(text, fits ? s.offset : orig.length);
  v.setBigUint64(ph + 32, BigInt(text.length), true);
  return bytes;
}

/** Mutates `orig` (an ELF file) as `seed` says. `self`: the path the mutant is written to. */
function mutate(orig: Uint8Array, seed: number, self: string, kinds: readonly Kind[]): Mutant {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const elf = parseElf(orig);
  const bytes = orig.slice();
  const v = new DataView(bytes.buffer);
  const kind = pick(kinds);
  const phdr = (i: number) => elf.phoff + i * elf.phentsize;
  const field = (name: string, off: number, bits: 16 | 32 | 64) => {
    const x = interesting(rand, get(v, off, bits), orig.length, bits);
    put(v, off, bits, x);
    return `${name}=0x${x.toString(16)}`;
  };
  let what = "";
  switch (kind) {
    case "ehdr": {
      const [name, off, bits] = pick(EHDR_FIELDS);
      what = field(name, off, bits);
      break;
    }
    case "phdr": {
      const i = Math.floor(rand() * elf.phnum);
      const [name, off, bits] = pick(PHDR_FIELDS);
      what = field(`phdr[${i}].${name}`, phdr(i) + off, bits);
      if (rand() < 0.3) { // two fields at once: get past one check to the next
        const [n2, o2, b2] = pick(PHDR_FIELDS);
        what += " " + field(`phdr[${i}].${n2}`, phdr(i) + o2, b2);
      }
      break;
    }
    case "interp": {
      const i = elf.segments.findIndex((s) => s.type === PT_INTERP);
      const s = elf.segments[i];
      const r = rand();
      if (r < 0.3) {
        what = field(`PT_INTERP.p_filesz`, phdr(i) + 32, 64);
      } else if (r < 0.5) {
        const at = s.offset + Math.floor(rand() * s.filesz);
        bytes[at] = pick([0, 0x2f, 0x2e, 0x20, 0xff, Math.floor(rand() * 256)]);
        what = `interp byte ${at - s.offset}=0x${bytes[at].toString(16)}`;
      } else {
        // Another path: written over the string (its room, else past the
        // end of the file, the segment moved there).
        const p = pick(INTERPS);
        what = `interp ${JSON.stringify(p)}`;
        return { seed, kind, what, bytes: withInterp(bytes, p === "SELF" ? self : p) };
      }
      break;
    }
    case "dynamic": {
      const s = elf.segments.find((s) => s.type === PT_DYNAMIC)!;
      const n = Math.floor(s.filesz / 16);
      const e = Math.floor(rand() * n);
      const tagged = rand() < 0.4;
      what = field(
        `dynamic[${e}].${tagged ? "d_tag" : "d_val"}`,
        s.offset + e * 16 + (tagged ? 0 : 8),
        64,
      );
      what += ` (tag ${get(v, s.offset + e * 16, 64)})`;
      break;
    }
    case "truncate": {
      // Mostly inside the headers and the first pages, where the loader reads.
      const end = rand() < 0.6
        ? Math.floor(rand() * Math.min(orig.length, 0x3000))
        : Math.floor(rand() * orig.length);
      what = `truncated at ${end} of ${orig.length}`;
      return { seed, kind, what, bytes: bytes.slice(0, end) };
    }
  }
  return { seed, kind, what, bytes };
}

/** The real binaries mutated: fixtures of each build, and a Debian program. */
async function originals(): Promise<{ name: string; bytes: Uint8Array; kinds: Kind[] }[]> {
  const out = [];
  for (const tc of ["musl-static", "glibc-static", "glibc-static-pie", "glibc-dynamic"] as const) {
    out.push({ name: `hello ${tc}`, path: await fixture("hello", tc) });
  }
  out.push({ name: "/bin/true", path: "/bin/true" });
  return out.map(({ name, path }) => {
    const bytes = Deno.readFileSync(path);
    const elf = parseElf(bytes);
    const kinds = KINDS.filter((k) =>
      (k !== "interp" || elf.interpreter !== undefined) &&
      (k !== "dynamic" || elf.segments.some((s) => s.type === PT_DYNAMIC))
    );
    return { name, bytes, kinds };
  });
}

/** The mount that lets the guest find a dynamic program's interpreter. */
const ROOT_RO = [{ host: "/", guest: "/", readOnly: true }];

/**
 * What the open fds of this process are (files, KVM's, eventfds; not
 * pipes, sockets, epoll and pidfds, which the Deno runtime, its test runner
 * and other test files' Deno.Command children open and close on their
 * own); not their numbers, which the runtime's own reopening shifts.
 */
function openFds(): string[] {
  return [...Deno.readDirSync("/proc/self/fd")].flatMap((e) => {
    try {
      const target = Deno.readLinkSync(`/proc/self/fd/${e.name}`);
      return /^(pipe|socket):|^anon_inode:\[(eventpoll|pidfd)\]/.test(target) ? [] : [target];
    } catch {
      return []; // the directory's own fd, closed by now
    }
  }).sort();
}
/**
 * Mappings a VM makes: guest RAM (1 GiB and the 2 MiB that align it) and
 * kvm_run. Not any large one: V8 reserves a cage per isolate, and other
 * test files' workers come and go meanwhile.
 */
function vmMappings(): number {
  return Deno.readTextFileSync("/proc/self/maps").split("\n").filter((l) => {
    const [lo, hi] = l.split(" ")[0].split("-").map((x) => parseInt(x, 16));
    return hi - lo === (1 << 30) + (2 << 20) || l.includes("anon_inode:kvm");
  }).length;
}

/**
 * Asserts this process holds the fds and VM mappings it held before the
 * runs, once the last VM's background close (a VM fd closes on a worker
 * thread: KVM's teardown takes ms) has ended: up to 5 s.
 */
/** The fds and VM mappings of this process once no VM is left closing (up to 5 s). */
async function baseline(): Promise<[string[], number]> {
  await dropSpareMemory();
  for (let i = 0; i < 50 && openFds().some((f) => f.includes("anon_inode:kvm")); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return [openFds(), vmMappings()];
}

async function assertNothingLeaked(before: [string[], number], what: string) {
  for (let i = 0;; i++) {
    await dropSpareMemory();
    const now: [string[], number] = [openFds(), vmMappings()];
    if (i === 50) return deepStrictEqual(now, before, what);
    if (JSON.stringify(now) === JSON.stringify(before)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The CLI's exit status for what boot() threw (src/cli/main.ts), or a
 * failure: only a one-line `hermitux:` error about the program is allowed.
 */
function statusOfError(e: unknown, label: string): number {
  ok(e instanceof Error, `${label}: threw a non-Error ${e}`);
  const msg = e instanceof ElfError ? `hermitux: ${e.message}` : e.message;
  ok(
    e instanceof ElfError || (e.constructor === Error && msg.startsWith("hermitux: ")),
    `${label}: host exception ${e.stack}`,
  );
  equal(msg.split("\n").length, 1, `${label}: more than one line: ${msg}`);
  return e instanceof ElfError ? 126 : /no such file/.test(msg) ? 127 : 126;
}

Deno.test(`${MUTATIONS} mutated executables in-process: an error, a crash report or a run`, async () => {
  const dir = await Deno.makeTempDir({ prefix: "hermitux-robust-" });
  const nul = libc().open(new TextEncoder().encode("/dev/null\0"), 2 | 0x80000, 0);
  const bins = await originals();
  const tally: Record<string, number> = {};
  try {
    // Warm-up, so that the kernel image and libc are loaded before counting.
    await boot({ path: await fixture("hello", "musl-static"), stdio: [nul, nul, nul] });
    const before = await baseline();
    for (let i = 0; i < MUTATIONS; i++) {
      const seed = SEED * 100003 + i;
      const bin = bins[i % bins.length];
      const path = `${dir}/m${i % 8}`;
      const m = mutate(bin.bytes, seed, path, bin.kinds);
      Deno.writeFileSync(path, m.bytes, { mode: 0o755 });
      const label = `${bin.name} seed ${seed} ${m.kind}: ${m.what}`;
      const diags: string[] = [];
      let outcome: string;
      try {
        const r = await boot({
          path,
          stdio: [nul, nul, nul],
          mounts: ROOT_RO,
          timeout: 5,
          onDiagnostic: (d) => diags.push(d),
        });
        if (r.timedOut) outcome = "timeout";
        else if (r.signal !== undefined) {
          equal(r.status, 128 + r.signal, label);
          ok(
            r.crash === undefined || diags.some((d) => d.startsWith("hermitux: guest killed by")),
            label,
          );
          outcome = "signal";
        } else outcome = "exit";
      } catch (e) {
        outcome = `error ${statusOfError(e, label)}`;
      }
      tally[outcome] = (tally[outcome] ?? 0) + 1;
    }
    await assertNothingLeaked(before, "fds and VM mappings after the runs");
  } finally {
    libc().close(nul);
    await Deno.remove(dir, { recursive: true });
  }
  console.log(`  outcomes: ${JSON.stringify(tally)}`);
});

Deno.test(`${CLI_MUTATIONS} mutated executables through cli.ts run: one line and the documented status`, async () => {
  const dir = await Deno.makeTempDir({ prefix: "hermitux-robust-cli-" });
  const bins = await originals();
  const tally: Record<number, number> = {};
  try {
    const one = async (i: number) => {
      const seed = SEED * 7919 + i;
      const bin = bins[i % bins.length];
      const path = `${dir}/m${i}`;
      const m = mutate(bin.bytes, seed, path, bin.kinds);
      await Deno.writeFile(path, m.bytes, { mode: 0o755 });
      const c = hermituxCommand(path, [], { flags: ["--timeout", "10"] });
      const r = await new Deno.Command(c.cmd, {
        args: c.args,
        env: c.env,
        clearEnv: true,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
      await Deno.remove(path);
      const stderr = new TextDecoder().decode(r.stderr);
      const label = `${bin.name} seed ${seed} ${m.kind}: ${m.what}: status ${r.code}: ${stderr}`;
      ok(!/internal error|Uncaught|^\s+at /m.test(stderr), label);
      if (r.code === 126 || r.code === 127) {
        const lines = stderr.trimEnd().split("\n");
        // A missing shared library is ld.so's own error (127), as natively.
        const ldso = lines.filter((l) => !l.startsWith("hermitux: "));
        ok(
          (lines.length === 1 && lines[0].startsWith("hermitux: ")) ||
            (r.code === 127 && ldso.length <= 1),
          label,
        );
      } else if (r.code > 128 && r.code !== 255) {
        ok(/hermitux: guest killed by SIG\w+: .*\n {2}rip 0x/.test(stderr), label);
      } else {
        ok(r.code < 125 || r.code === 255, label); // the guest's own status (or --timeout's 124)
      }
      tally[r.code] = (tally[r.code] ?? 0) + 1;
    };
    // Two at a time (2 cores): each is a Deno start-up.
    for (let i = 0; i < CLI_MUTATIONS; i += 2) {
      await Promise.all([i, i + 1].filter((j) => j < CLI_MUTATIONS).map(one));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  console.log(`  statuses: ${JSON.stringify(tally)}`);
});

/** A host fd on a fresh temp file, and its path. */
function tempFd(dir: string, name: string): [number, string] {
  const path = `${dir}/${name}`;
  const fd = libc().open(new TextEncoder().encode(path + "\0"), 0o2000102, 0o600); // O_RDWR|O_CREAT|O_CLOEXEC
  ok(fd >= 0, `open ${path}`);
  return [fd, path];
}

/**
 * Set in the process the test below starts: the fds and mappings it counts
 * are the whole process's, and `deno test --parallel` runs other test files
 * (their VMs, V8 isolates and children) in this one.
 */
const OWN_PROCESS = Deno.env.get("HERMITUX_ROBUST_OWN_PROCESS") === "1";
const MANY = "50 boot()s at once of a mixed set: each as its native run, nothing leaked";

Deno.test({ name: `${MANY} (in a process of its own)`, ignore: OWN_PROCESS }, async () => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--no-check", "--filter", MANY, new URL(import.meta.url).pathname],
    env: { HERMITUX_ROBUST_OWN_PROCESS: "1", NO_COLOR: "1" },
  }).output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  equal(r.code, 0, out.slice(-3000));
  ok(/ok \| 1 passed/.test(out), out.slice(-3000));
});

Deno.test({ name: MANY, ignore: !OWN_PROCESS }, async () => {
  const progs: { name: string; path: string; args: string[] }[] = [
    { name: "hello musl", path: await fixture("hello", "musl-static"), args: [] },
    { name: "hello glibc", path: await fixture("hello", "glibc-static"), args: [] },
    { name: "hello dynamic", path: await fixture("hello", "glibc-dynamic"), args: [] },
    { name: "args dynamic", path: await fixture("args_env", "glibc-dynamic"), args: ["a", "b c"] },
    {
      name: "python3",
      path: "/usr/bin/python3",
      args: ["-c", "import sys; print(sum(range(1000)), sys.argv[1:])", "x"],
    },
    { name: "fork", path: await fixture("proc_fork", "musl-static"), args: [] },
    { name: "fork glibc", path: await fixture("proc_fork", "glibc-dynamic"), args: [] },
  ];
  const native = await Promise.all(progs.map((p) => runNative(p.path, p.args)));
  const cache = progs[0].path.replace(/\/[^/]*$/, "");
  const dir = await Deno.makeTempDir({ prefix: "hermitux-robust-many-" });
  const inVm = async (i: number) => {
    const p = progs[i % progs.length];
    const fds = [tempFd(dir, `${i}.in`), tempFd(dir, `${i}.out`), tempFd(dir, `${i}.err`)];
    try {
      const r = await boot({
        path: p.path,
        args: p.args,
        stdio: [fds[0][0], fds[1][0], fds[2][0]],
        // A /tmp of its own (the fork program writes there) that still shows
        // the fixtures' directory, the rest of / read-only.
        mounts: [
          ...ROOT_RO,
          { host: ":memory:", guest: "/tmp", readOnly: false },
          { host: cache, guest: cache, readOnly: true },
        ],
        timeout: 120,
      });
      return {
        stdout: await Deno.readTextFile(fds[1][1]),
        stderr: await Deno.readTextFile(fds[2][1]),
        code: r.status,
      };
    } finally {
      for (const [fd] of fds) libc().close(fd);
    }
  };
  try {
    await inVm(0); // warm-up: kernel image and libc loaded once
    const before = await baseline();
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => inVm(i)));
    results.forEach((r, i) =>
      deepStrictEqual(r, native[i % progs.length], `run ${i}: ${progs[i % progs.length].name}`)
    );
    await assertNothingLeaked(before, "fds and VM mappings after the runs");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a device, a FIFO or a directory as the program or its interpreter: one line, 126", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hermitux-robust-special-" });
  try {
    const fifo = `${dir}/fifo`;
    await new Deno.Command("mkfifo", { args: [fifo] }).output();
    // An interpreter that is each of them: PT_INTERP rewritten in place.
    const orig = Deno.readFileSync(await fixture("hello", "glibc-dynamic"));
    const progs = [fifo, "/dev/zero", dir];
    // The host's /dev under /hostdev (the guest's /dev has no zero of the host's).
    for (const interp of ["/hostdev/zero", fifo, "/tmp"]) {
      const path = `${dir}/interp-${progs.length}`;
      await Deno.writeFile(path, withInterp(orig, interp), { mode: 0o755 });
      progs.push(path);
    }
    for (const path of progs) {
      const c = hermituxCommand(path, [], {
        flags: ["--timeout", "10", "--mount", "/dev:/hostdev:ro", "--mount", `${dir}:${dir}`],
      });
      const r = await new Deno.Command(c.cmd, {
        args: c.args,
        env: c.env,
        stdin: "null",
        stderr: "piped",
      })
        .output();
      const stderr = new TextDecoder().decode(r.stderr);
      equal(r.code, 126, `${path}: ${stderr}`);
      ok(/^hermitux: [^\n]*: (permission denied|is a directory)\n$/.test(stderr), stderr);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("KVM_RUN failing on the main thread ends the run with a report, not a host exception", async () => {
  // A guest that scribbled over its own page tables made kvm_pvm's KVM_RUN
  // fail with ENOENT once (tests/hostile_test.ts); here the third KVM_RUN
  // fails so, through a stub (errno from opening a missing file).
  const hello = await fixture("hello", "musl-static");
  const t = libc() as unknown as Record<string, (...a: unknown[]) => unknown>;
  const real = t.ioctl;
  let runs = 0;
  t.ioctl = (fd, req, arg) => {
    if (req !== 0xae80 || ++runs !== 3) return real(fd, req, arg);
    libc().open(new TextEncoder().encode("/nonexistent/hermitux\0"), 0, 0);
    return -1;
  };
  const said: string[] = [];
  try {
    const r = await boot({ path: hello, hostCalls: "exit", onDiagnostic: (m) => said.push(m) });
    equal(r.status, 137);
    ok(said.some((m) => m.includes("KVM_RUN failed: No such file or directory")), said.join("\n"));
  } finally {
    t.ioctl = real;
  }
});
