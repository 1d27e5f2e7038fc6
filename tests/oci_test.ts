// The OCI runtime (bin/hermitux-oci, src/oci/) driven as containerd's runc
// shim drives it: bundles made here (a rootfs with Debian's static busybox,
// config.json written by the test), create → created → start → the
// container's output and exit status (read as the shim does: this process
// is a child subreaper and waits for the holder's pid) → stopped → delete;
// runc's errors for misuse; kill; config: env, cwd, mounts, read-only
// root, rlimits, hostname, terminal refused without a console socket.
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { bufferAddress, hostSyscall } from "../src/syscalls/host.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const OCI = `${ROOT}bin/hermitux-oci`;
const decoder = new TextDecoder();

// Orphaned holders (their create has exited) become our children, as the shim's.
const PR_SET_CHILD_SUBREAPER = 36;
hostSyscall(157, PR_SET_CHILD_SUBREAPER, 1);

/** Waits for host process `pid` (our child) and decodes its status as a shell shows it. */
async function waitPid(pid: number): Promise<number> {
  const st = new Int32Array(1);
  for (;;) {
    const r = hostSyscall(61, pid, bufferAddress(new Uint8Array(st.buffer)), 1, /* WNOHANG */ 0);
    if (r === BigInt(pid)) {
      const s = st[0];
      return (s & 0x7f) === 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f);
    }
    if (r < 0n) throw new Error(`wait4 ${pid}: errno ${-r}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `hermitux-oci --root ROOT ARGS` with the minimal environment containerd gives. */
async function oci(root: string, ...args: string[]): Promise<Out> {
  const r = await new Deno.Command(OCI, {
    args: ["--root", root, ...args],
    clearEnv: true,
    env: envPassed(),
    stdin: "null",
  }).output();
  return { code: r.code, stdout: decoder.decode(r.stdout), stderr: decoder.decode(r.stderr) };
}

/** The transport and rewrite choices CI varies reach the holder too. */
function envPassed(): Record<string, string> {
  const env: Record<string, string> = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" };
  for (const k of ["HERMITUX_REWRITE", "HERMITUX_HOST_CALLS", "DENO_DIR", "HOME"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  return env;
}

/** A bundle in a fresh directory: rootfs with busybox and its applets as symlinks. */
function bundle(dir: string, config: Record<string, unknown>): string {
  const b = `${dir}/bundle-${crypto.randomUUID().slice(0, 8)}`;
  for (const d of ["bin", "tmp", "etc", "data"]) {
    Deno.mkdirSync(`${b}/rootfs/${d}`, { recursive: true });
  }
  Deno.copyFileSync("/bin/busybox", `${b}/rootfs/bin/busybox`);
  Deno.chmodSync(`${b}/rootfs/bin/busybox`, 0o755);
  for (const a of ["sh", "echo", "sleep", "cat", "pwd", "env", "touch", "hostname", "ls"]) {
    Deno.symlinkSync("busybox", `${b}/rootfs/bin/${a}`);
  }
  Deno.writeTextFileSync(`${b}/rootfs/etc/motd`, "from the image\n");
  const spec = {
    ociVersion: "1.0.2",
    root: { path: "rootfs", readonly: false },
    hostname: "box",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "mode=755"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["ro"] },
    ],
    ...config,
    process: { cwd: "/", env: ["PATH=/bin"], ...(config.process as object) },
  };
  Deno.writeTextFileSync(`${b}/config.json`, JSON.stringify(spec));
  return b;
}

/** A created container: its holder's pid and the output it writes (read until it ends). */
interface Created {
  pid: number;
  output: Promise<{ stdout: string; stderr: string }>;
}

/** `create ID --bundle B --pid-file F` with its stdio piped, as the shim does. */
async function create(root: string, id: string, b: string): Promise<Created> {
  const child = new Deno.Command(OCI, {
    args: [
      "--root",
      root,
      "--log",
      `${b}/log.json`,
      "--log-format",
      "json",
      "create",
      "--bundle",
      b,
      "--pid-file",
      `${b}/pid`,
      id,
    ],
    clearEnv: true,
    env: envPassed(),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const text = (s: ReadableStream<Uint8Array>) => new Response(s).text();
  const output = Promise.all([text(child.stdout), text(child.stderr)])
    .then(([stdout, stderr]) => ({ stdout, stderr }));
  const status = await child.status;
  if (!status.success) throw new Error(`create failed (${status.code}): ${(await output).stderr}`);
  const pid = Number(Deno.readTextFileSync(`${b}/pid`));
  return { pid, output };
}

/** Creates, starts and waits for a container: its output and exit status. */
async function runContainer(
  root: string,
  id: string,
  b: string,
): Promise<{ status: number; stdout: string; stderr: string }> {
  const c = await create(root, id, b);
  const s = await oci(root, "start", id);
  equal(s.code, 0, s.stderr);
  const status = await waitPid(c.pid);
  const out = await c.output;
  equal((await oci(root, "delete", id)).code, 0);
  return { status, ...out };
}

async function inTemp(f: (dir: string, root: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "hermitux-oci-" });
  try {
    await f(dir, `${dir}/state`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const state = async (root: string, id: string) => JSON.parse((await oci(root, "state", id)).stdout);

Deno.test("create → created, start → output and exit status 7, stopped, delete", async () => {
  await inTemp(async (dir, root) => {
    const b = bundle(dir, {
      process: {
        args: ["sh", "-c", 'echo "hello $FOO from $(pwd) on $(hostname)"; cat /etc/motd; exit 7'],
        env: ["PATH=/bin", "FOO=bar"],
        cwd: "/tmp",
      },
    });
    const c = await create(root, "c1", b);
    ok(Deno.statSync(`/proc/${c.pid}`).isDirectory, "the pid file names a live process");
    const s1 = await state(root, "c1");
    equal(s1.status, "created");
    equal(s1.pid, c.pid);
    equal(s1.id, "c1");
    equal(s1.bundle, b);
    equal(s1.ociVersion, "1.0.2");
    deepStrictEqual(JSON.parse((await oci(root, "ps", "--format", "json", "c1")).stdout), [c.pid]);
    equal((await oci(root, "start", "c1")).code, 0);
    equal(await waitPid(c.pid), 7);
    const out = await c.output;
    equal(out.stdout, "hello bar from /tmp on box\nfrom the image\n");
    equal((await state(root, "c1")).status, "stopped");
    // A second start: runc's words and status.
    const again = await oci(root, "start", "c1");
    equal(again.code, 1);
    match(again.stderr, /cannot start a container that has stopped/);
    const k = await oci(root, "kill", "c1", "SIGTERM");
    equal(k.code, 1);
    match(k.stderr, /container not running/);
    equal((await oci(root, "delete", "c1")).code, 0);
    const gone = await oci(root, "state", "c1");
    equal(gone.code, 1);
    match(gone.stderr, /container does not exist/);
  });
});

Deno.test("misuse: a duplicate create, unknown ids, a bad bundle", async () => {
  await inTemp(async (dir, root) => {
    const b = bundle(dir, { process: { args: ["sleep", "100"] } });
    const c = await create(root, "dup", b);
    const second = await oci(root, "create", "--bundle", b, "dup");
    equal(second.code, 1);
    match(second.stderr, /container with id exists: dup/);
    equal((await state(root, "dup")).status, "created", "the first is untouched");
    for (const cmd of [["state"], ["start"], ["kill"], ["delete"], ["ps"]]) {
      const r = await oci(root, ...cmd, "nosuch");
      equal(r.code, 1, cmd[0]);
      match(r.stderr, /container does not exist/, cmd[0]);
    }
    equal((await oci(root, "delete", "--force", "nosuch")).code, 0);
    const bad = await oci(root, "create", "--bundle", `${dir}/none`, "x");
    equal(bad.code, 1);
    match(bad.stderr, /config\.json/);
    const noProg = bundle(dir, { process: { args: ["nosuch"] } });
    const np = await oci(root, "create", "--bundle", noProg, "np");
    equal(np.code, 1);
    match(np.stderr, /exec: "nosuch": executable file not found in \$PATH/);
    equal((await oci(root, "state", "np")).code, 1, "nothing left of it");
    const badId = await oci(root, "state", "../x");
    equal(badId.code, 1);
    match(badId.stderr, /invalid container id/);
    // delete of a created container ends its holder (as runc's does).
    equal((await oci(root, "delete", "dup")).code, 0);
    equal(await waitPid(c.pid), 137);
    await c.output;
  });
});

Deno.test("kill SIGTERM ends a running sleep (143); delete refuses a running one", async () => {
  await inTemp(async (dir, root) => {
    const b = bundle(dir, { process: { args: ["sleep", "100"] } });
    const c = await create(root, "k", b);
    equal((await oci(root, "start", "k")).code, 0);
    equal((await state(root, "k")).status, "running");
    const start = await oci(root, "start", "k");
    match(start.stderr, /cannot start an already running container/);
    const del = await oci(root, "delete", "k");
    equal(del.code, 1);
    match(del.stderr, /cannot delete container k that is not stopped: running/);
    equal((await oci(root, "kill", "k", "TERM")).code, 0);
    equal(await waitPid(c.pid), 143);
    await c.output;
    equal((await state(root, "k")).status, "stopped");
    equal((await oci(root, "delete", "k")).code, 0);
  });
});

Deno.test("a trap in the container runs for kill SIGUSR1 and SIGTERM", async () => {
  await inTemp(async (dir, root) => {
    const b = bundle(dir, {
      process: {
        args: [
          "sh",
          "-c",
          "trap 'echo usr1' USR1; trap 'echo term; exit 3' TERM; while :; do sleep 0.1; done",
        ],
      },
    });
    const c = await create(root, "t", b);
    equal((await oci(root, "start", "t")).code, 0);
    await new Promise((r) => setTimeout(r, 1500)); // the shell sets its traps
    equal((await oci(root, "kill", "t", "10")).code, 0);
    await new Promise((r) => setTimeout(r, 1000));
    equal((await oci(root, "kill", "t", "SIGTERM")).code, 0);
    equal(await waitPid(c.pid), 3);
    equal((await c.output).stdout, "usr1\nterm\n");
    equal((await oci(root, "delete", "t")).code, 0);
  });
});

Deno.test("mounts: a read-only bind mount, a tmpfs, a read-only root refusing a write", async () => {
  await inTemp(async (dir, root) => {
    const host = `${dir}/shared`;
    Deno.mkdirSync(host);
    Deno.writeTextFileSync(`${host}/note`, "from the host\n");
    const script = [
      "cat /mnt/note",
      "touch /mnt/x 2>/dev/null && echo bind-writable || echo bind-ro",
      "touch /scratch/y && echo tmpfs-ok",
      "touch /data/z 2>/dev/null && echo root-writable || echo root-ro",
    ].join("; ");
    const b = bundle(dir, {
      root: { path: "rootfs", readonly: true },
      process: { args: ["sh", "-c", script] },
      mounts: [
        { destination: "/proc", type: "proc", source: "proc" },
        { destination: "/mnt", type: "bind", source: host, options: ["rbind", "ro"] },
        { destination: "/scratch", type: "tmpfs", source: "tmpfs", options: ["nosuid"] },
      ],
    });
    const r = await runContainer(root, "m", b);
    equal(r.stdout, "from the host\nbind-ro\ntmpfs-ok\nroot-ro\n");
    equal(r.status, 0);
    equal([...Deno.readDirSync(host)].length, 1, "nothing written to the host directory");
    // Without ro the same bind is writable.
    const w = bundle(dir, {
      process: { args: ["sh", "-c", "echo hi > /mnt/w && cat /mnt/w"] },
      mounts: [{ destination: "/mnt", type: "bind", source: host, options: ["rbind", "rw"] }],
    });
    equal((await runContainer(root, "w", w)).stdout, "hi\n");
    equal(Deno.readTextFileSync(`${host}/w`), "hi\n");
  });
});

Deno.test("rlimits become hermitux's limits; a terminal needs a console socket", async () => {
  await inTemp(async (dir, root) => {
    const b = bundle(dir, {
      process: {
        args: ["sh", "-c", "ulimit -n; ulimit -f"],
        rlimits: [
          { type: "RLIMIT_NOFILE", hard: 64, soft: 64 },
          { type: "RLIMIT_FSIZE", hard: 1048576, soft: 1048576 },
        ],
      },
    });
    const r = await runContainer(root, "r", b);
    equal(r.stdout, "64\n2048\n"); // ulimit -f counts 512-byte blocks
    const t = bundle(dir, { process: { args: ["sh"], terminal: true } });
    const refused = await oci(root, "create", "--bundle", t, "tty");
    equal(refused.code, 1);
    match(refused.stderr, /console socket/);
  });
});
