// /proc of the guest's processes: a C program reads its own entries, a
// child's (stat, status, cmdline, comm, exe, fd/, task/) while it sleeps
// and once it is a zombie, and a second thread's (tests/c/procfs.c in
// three builds), against native runs; /proc lists the guest's processes
// only; procps `ps`, run from a shell in the guest, lists the shell, a
// background job and itself with the pids and parents the shell knows.
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { fixture, type Outcome, runHermitux, runNative, type Toolchain } from "./fixtures.ts";
import { boot } from "../mod.ts";

const BUILDS: Toolchain[] = ["glibc-dynamic", "glibc-static", "musl-static"];

/** Every guest gets a timeout: a process left waiting fails its test, not the run. */
const TIMEOUT = ["--timeout", "120"];

/** The directory of `bin` mounted read-only at its own path (the child execs it again). */
function guestFlags(bin: string): string[] {
  const dir = bin.slice(0, bin.lastIndexOf("/"));
  return [...TIMEOUT, "--memfs", "/tmp", "--mount", `${dir}:${dir}:ro`];
}

/**
 * The child's fds past 0-2, natively: whatever else the test runner left
 * open is not the program's (the guest starts with 0-2 only).
 */
function ownFds(out: Outcome): Outcome {
  return { ...out, stdout: out.stdout.replace(/^(child fds: 10 11 12)( \d+)*$/m, "$1") };
}

for (const tc of BUILDS) {
  Deno.test(`${tc}: /proc/PID of itself, a sleeping child, a zombie and a thread, as natively`, async () => {
    const bin = await fixture("procfs", tc);
    const [native, vm] = await Promise.all([
      runNative(bin),
      runHermitux(bin, [], { flags: guestFlags(bin) }),
    ]);
    deepStrictEqual(vm, ownFds(native));
    equal(vm.code, 0, vm.stderr);
    const lines = [
      "/proc/self names the pid 1",
      "/proc/thread-self names the thread 1",
      "self stat: pid 1 comm 1 state R ppid 1 pgrp 1 session 1 threads 1",
      "self status: Name 1 State R (running) Pid 1 PPid 1 Uid 1 Threads 1",
      "child stat: pid 1 comm 1 state S ppid 1 pgrp 1 session 1 tty 1 threads 1",
      "child stat: started after us 1, vsize 1, exit signal 17",
      "child status: Name 1 State S (sleeping) Tgid 1 Pid 1 PPid 1 Uid 1 Threads 1 VmRSS 1",
      "child cmdline: 1 bytes as argv 1",
      "child exe is the program 1",
      "child fds: 10 11 12",
      "child fd 11: /dev/null",
      "child fd 10: a pipe 1, the one we read 1",
      "child tasks: just it 1",
      "child dir: 1, ours 1",
      "a name it has not: ENOENT",
      "zombie stat: state Z ppid 1 exit code 1280",
      "zombie status: Name 1 State Z (zombie) VmRSS (none)",
      "zombie cmdline: 0 bytes",
      "zombie exe: ENOENT",
      "zombie fds: 0",
      "reaped: exited 5\nafter reaping: ENOENT\nits stat: ENOENT",
      "renamed child: renamed\nwe keep our name 1",
      "two threads: task/ lists both 1",
      "two threads: stat 2, status 2",
      "the thread's stat names it 1",
    ];
    for (const line of lines) ok(vm.stdout.includes(line + "\n"), `${line}\n---\n${vm.stdout}`);
  });

  Deno.test(`${tc}: /proc lists the guest's processes only; other pids are ENOENT`, async () => {
    const bin = await fixture("procfs", tc);
    const vm = await runHermitux(bin, ["list"], { flags: guestFlags(bin) });
    equal(vm.stderr, "");
    equal(
      vm.stdout,
      "thread: thread-self names it 1\n" +
        "/proc lists: self 1, thread 0, init 0, others 0; self and thread-self links 2\n" +
        "thread's own entry: exists\nparent's stat: ENOENT\ninit's stat: ENOENT\n",
    );
  });
}

// ---- procps ps in the guest ----

const PS = "/usr/bin/ps";

function installed(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Runs `sh -c script` under hermitux (the CLI's default mounts: /usr, /lib, /bin, /etc). */
function guestSh(script: string): Promise<Outcome> {
  return runHermitux("/bin/sh", ["-c", script], {
    env: { PATH: "/usr/bin:/bin", LC_ALL: "C" },
    flags: [...TIMEOUT, "--memfs", "/tmp"],
  });
}

/** A table `ps` printed, as rows of columns (the header dropped), and the ids the shell named. */
function psRows(out: Outcome): { rows: string[][]; sh: string; job: string } {
  const [ids, header, ...rest] = out.stdout.trimEnd().split("\n");
  const [, sh, job] = /^sh (\d+) job (\d+)$/.exec(ids) ?? [];
  ok(sh && job, out.stdout);
  match(header, /^\s*PID/);
  return { rows: rest.map((l) => l.trim().split(/\s+/)), sh, job };
}

/** The shell, its background job and ps, with the pids and parents the shell knows. */
function assertFamily(rows: string[][], sh: string, job: string, who: string) {
  const shell = rows.find((r) => r[0] === sh), sleep = rows.find((r) => r[0] === job);
  const ps = rows.filter((r) => r[1] === sh && r.at(-1) === "ps");
  ok(shell && shell.at(-1) === "sh", `${who}: the shell\n${rows.join("\n")}`);
  ok(sleep && sleep[1] === sh && sleep.at(-1) === "sleep", `${who}: the job\n${rows.join("\n")}`);
  equal(ps.length, 1, `${who}: ps\n${rows.join("\n")}`);
  return { shell: shell!, sleep: sleep!, ps: ps[0] };
}

/** A background sleep, and its pid once it sleeps (it may still be starting before). */
const FAMILY = 'sleep 10 & echo "sh $$ job $!"; i=0; while [ $i -lt 200 ]; do ' +
  'read -r s < /proc/$!/stat; case "$s" in *") S "*) break;; esac; sleep 0.05; i=$((i+1)); done; ';

Deno.test("ps -o pid,ppid,stat,comm from sh: the shell, its job and ps, as natively", async () => {
  if (!installed(PS)) return; // procps missing: nothing to compare
  const script = FAMILY + "ps -o pid,ppid,stat,comm; kill $!";
  const [native, vm] = await Promise.all([
    runNative("/bin/sh", ["-c", script], { env: { PATH: "/usr/bin:/bin", LC_ALL: "C" } }),
    guestSh(script),
  ]);
  for (const [who, out] of [["native", native], ["hermitux", vm]] as const) {
    equal(out.code, 0, `${who}: ${out.stderr}`);
    equal(out.stderr, "", who);
    const { rows, sh, job } = psRows(out);
    const { shell, sleep, ps } = assertFamily(rows, sh, job, who);
    match(shell[2], /^S/, who); // waits for ps
    match(sleep[2], /^S/, who);
    match(ps[2], /^R/, who);
    // Natively ps also lists the host's other processes; in the guest there are none.
    if (who === "hermitux") equal(rows.length, 3, rows.join("\n"));
  }
});

Deno.test("ps -e and ps aux in the guest list the guest's processes only", async () => {
  if (!installed(PS)) return;
  const vm = await guestSh(
    FAMILY + "ps -e -o pid,ppid,pgid,stat,comm; echo ---; ps aux; echo ---; " +
      'ps -p $$ -o pid= -o comm=; echo ---; ps -p 1 -o pid=; echo "no init: $?"; kill $!',
  );
  equal(vm.code, 0, vm.stderr);
  equal(vm.stderr, "");
  const [e, aux, p, init] = vm.stdout.split("---\n");
  const { rows, sh, job } = psRows({ ...vm, stdout: e });
  equal(rows.length, 3, e);
  const { shell, sleep } = assertFamily(rows, sh, job, "ps -e");
  equal(sleep[2], shell[2], "one process group"); // a non-interactive shell's job stays in its group
  const auxRows = aux.trimEnd().split("\n").slice(1).map((l) => l.trim().split(/\s+/));
  deepStrictEqual(auxRows.map((r) => r[1]).sort(), [...new Set(auxRows.map((r) => r[1]))].sort());
  equal(auxRows.length, 3, aux);
  ok(auxRows.some((r) => r[1] === job && r.slice(10).join(" ") === "sleep 10"), aux);
  ok(auxRows.some((r) => r[1] === sh && r.slice(10)[0] === "/bin/sh"), aux);
  equal(p.trim().split(/\s+/).join(" "), `${sh} sh`);
  equal(init, "no init: 1\n");
});

for (const tc of BUILDS) {
  Deno.test(`${tc}: /proc/self/exe is the program, also under a mount at another path`, async () => {
    const bin = await fixture("exe_stat", tc);
    const dir = bin.slice(0, bin.lastIndexOf("/")), name = bin.slice(dir.length + 1);
    const native = await runNative(bin);
    const vm = await runHermitux(`/x/${name}`, [], {
      flags: [...TIMEOUT, "--mount", `${dir}:/x:ro`],
    });
    deepStrictEqual(vm, native);
    equal(vm.stdout, "stat exe 0, argv[0] 0, the same file 1\n");
  });
}

Deno.test("execve through /proc is the guest's /proc, even under a mount of the host's /", async () => {
  // The host's /proc/self/exe is Deno itself: busybox's applets re-exec
  // /proc/self/exe, which ran the host's Deno in the guest before.
  const run = async (script: string) => {
    const r = await boot({
      path: "/bin/busybox",
      args: ["sh", "-c", script],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      mounts: [{ host: "/", guest: "/", readOnly: true }],
    });
    const text = (b?: Uint8Array) => new TextDecoder().decode(b);
    return { status: r.status, out: text(r.stdout), err: text(r.stderr) };
  };
  // busybox runs an applet in a pipeline by execve("/proc/self/exe", ["cat", ...]).
  deepStrictEqual(await run("echo via-proc | cat"), { status: 0, out: "via-proc\n", err: "" });
  const denied = await run("/proc/self/status");
  equal(denied.status, 126);
  match(denied.err, /Permission denied/);
});
