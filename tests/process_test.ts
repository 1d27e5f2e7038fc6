// Guest processes against native runs: fork, vfork, posix_spawn, execve,
// wait4/waitid, kill to pids and groups, sessions, SIGCHLD, pipes between
// processes (tests/c/proc_*.c in three builds); then shells (dash, bash,
// busybox sh: pipelines, SIGPIPE, jobs, coprocesses), python3 (subprocess,
// os.fork, multiprocessing), perl, lua5.4, make, xargs, find -exec, tar -z,
// env -i, timeout, nohup, nice and git's pager, which all start processes
// of their own.
//
// The guest's /tmp is a private --memfs (a fixture makes its temporary
// directories there, a shell its mktemp files) and the fixtures' directory
// is mounted read-only at its own path, so a program can exec itself.
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import {
  fixture,
  hermituxCommand,
  type Outcome,
  runHermitux,
  runNative,
  type Toolchain,
} from "./fixtures.ts";

const BUILDS: Toolchain[] = ["glibc-dynamic", "glibc-static", "musl-static"];

/** Every guest gets a timeout: a process left waiting fails its test, not the run. */
const TIMEOUT = ["--timeout", "120"];

/** --memfs /tmp, and the directory of `bin` at its own path (for execve of argv[0]). */
function guestFlags(bin: string): string[] {
  const dir = bin.slice(0, bin.lastIndexOf("/"));
  return [...TIMEOUT, "--memfs", "/tmp", "--mount", `${dir}:${dir}:ro`];
}

/** Runs a fixture natively and under hermitux; asserts the same stdout, stderr and status. */
async function sameC(bin: string, args: string[] = []): Promise<Outcome> {
  const [native, vm] = await Promise.all([
    runNative(bin, args),
    runHermitux(bin, args, { flags: guestFlags(bin) }),
  ]);
  deepStrictEqual(vm, native, `${bin} ${args.join(" ")}`);
  return vm;
}

for (const tc of BUILDS) {
  Deno.test(`${tc}: fork, pipes, waitpid statuses, copied memory, a shared offset, zombies`, async () => {
    const out = await sameC(await fixture("proc_fork", tc));
    equal(out.code, 0);
    match(out.stdout, /^waitpid without children: -1 ECHILD$/m);
    match(
      out.stdout,
      /^parent read: 'child: fork returned 0, ppid==parent 1, pid!=parent 1'\n.*\n.*\nchild: exited 7$/m,
    );
    match(out.stdout, /^parent sees: counter 1 heap 'parent heap'$/m);
    match(out.stdout, /^file holds: 'child\nparent\n'$/m);
    match(out.stdout, /^WNOHANG while the child runs: 0$/m);
    match(out.stdout, /^WIFSIGNALED 1 WTERMSIG 9 WIFEXITED 0$/m);
    match(out.stdout, /^waitid WNOWAIT: 0 pid matches 1 code CLD_EXITED 1 status 3$/m);
    match(out.stdout, /^zombie still there \(kill 0\): 0$/m);
    match(out.stdout, /^waitpid again: -1 ECHILD\nkill 0 after reaping: -1 ESRCH$/m);
    match(out.stdout, /^the child's xmm8 is its parent's: 1$/m);
  });

  Deno.test(`${tc}: execve of itself (argv, envp, pid kept), exec errors, #! scripts, FD_CLOEXEC`, async () => {
    const out = await sameC(await fixture("proc_exec", tc));
    equal(out.code, 42); // the first process's own execve, "final" mode
    match(
      out.stdout,
      /^execve missing file: -1 ENOENT\nexecve directory: -1 EACCES\nexecve file without x: -1 EACCES\nexecve garbage: -1 ENOEXEC\nstill running after failed execs$/m,
    );
    match(out.stdout, /^script: script arg1 PROC_EXEC_VAR=hello world\nscript child: exited 4$/m);
    match(out.stdout, /^ {2}argv\[2\] 'two words'\n {2}argv\[3\] ''$/m);
    match(out.stdout, /^ {2}fd keep: F_GETFD 0 open\n {2}fd ocloexec: F_GETFD -1 EBADF$/m);
    match(out.stdout, /^ {2}fd setfd: F_GETFD -1 EBADF\n {2}fd cleared: F_GETFD 0 open$/m);
    match(out.stdout, /^ {2}fd dup: F_GETFD 0 open\n {2}fd pipe2: F_GETFD -1 EBADF$/m);
    match(out.stdout, /^ {2}env\[0\] 'PROC_EXEC_VAR=hello world'\n {2}env\[1\] 'SECOND=2'$/m);
    match(out.stdout, /^exec child: exited 43$/m);
    match(out.stdout, /^image final: argc 5\n {2}pid kept 1\n/m);
  });

  Deno.test(`${tc}: job control: SIGSTOP/SIGTSTP stop a child, SIGCONT continues it`, async () => {
    const out = await sameC(await fixture("proc_jobctl", tc));
    equal(out.code, 0);
    match(out.stdout, /^child: stopped by 19\nno progress while stopped: 1\n/m);
    match(out.stdout, /^child: continued\nprogress after SIGCONT: 1$/m);
    match(out.stdout, /^ {2}si_code CLD_STOPPED si_status 20 pid matches 1$/m);
    match(out.stdout, /^SIGCHLD codes: CLD_STOPPED CLD_CONTINUED CLD_STOPPED CLD_KILLED$/m);
    match(out.stdout, /^self-stopped child: stopped by 19\nself-stopped child: exited 3$/m);
    match(out.stdout, /^SIGCHLD codes with SA_NOCLDSTOP: CLD_EXITED$/m);
  });

  Deno.test(`${tc}: signals pending at execve stay pending, the mask kept`, async () => {
    const out = await sameC(await fixture("proc_exec_pending", tc));
    match(out.stdout, /^after execve: USR1 pending 1, RTMIN\+1 pending 1, USR2 pending 1$/m);
    match(out.stdout, /^mask kept: USR1 1\nhandled: USR1 1, RTMIN\+1 2\nchild: signaled 12$/m);
  });

  Deno.test(`${tc}: posix_spawn (file actions, a missing file), vfork + _exit, vfork + execve`, async () => {
    const out = await sameC(await fixture("proc_spawn", tc));
    equal(out.code, 0);
    match(out.stdout, /^spawned: argc 4 arg 'one' ppid matches 1\nposix_spawn: 0\n/);
    match(out.stdout, /^read from its stdout: 'piped: argc 4 arg 'two' ppid matches 1\n'$/m);
    match(out.stdout, /^posix_spawn missing: ENOENT$/m);
    match(out.stdout, /^vfork _exit: exited 3$/m);
    match(out.stdout, /^vforked: argc 4 arg 'three' ppid matches 1\nvfork execve: exited 4$/m);
    match(out.stdout, /^vfork failed execve: exited 5\nno children left: -1 ECHILD\n$/m);
  });

  Deno.test(`${tc}: vfork children run in their parent's memory (on its machine), and the parent's own state comes back`, async () => {
    const bin = await fixture("proc_vfork_loan", tc);
    const native = await runNative(bin);
    equal(native.code, 0);
    // On the parent's machine (the default once the run has several
    // processes), and with every vfork copying memory as the first does.
    for (const vfork of ["", "copy"]) {
      const c = hermituxCommand(bin, [], { flags: [...guestFlags(bin), "--stats"] });
      const r = await new Deno.Command(c.cmd, {
        args: c.args,
        env: { ...c.env, HERMITUX_VFORK: vfork },
        stdin: "null",
      }).output();
      const stdout = new TextDecoder().decode(r.stdout);
      const stderr = new TextDecoder().decode(r.stderr);
      equal(stdout, native.stdout, `HERMITUX_VFORK=${vfork}: ${stderr}`);
      equal(r.code, 0);
      const loans = stderr.match(/vforked on its parent's machine/g)?.length ?? 0;
      if (vfork === "copy") equal(loans, 0);
      else ok(loans >= 200, `${loans} vfork children on their parent's machine`);
    }
    match(native.stdout, /^our handler ran: 1, SIGUSR2 still blocked: 1$/m);
    match(native.stdout, /^vfork child killed: signaled 9$/m);
    match(native.stdout, /^200 spawns, wrong: 0\nour pid unchanged: 1, tls ours: 11\n$/m);
  });

  Deno.test(`${tc}: SIGKILL ends a vfork parent; its child goes on, orphaned, on the parent's machine`, async () => {
    const bin = await fixture("proc_vfork_orphan", tc);
    for (const args of [[], ["leave"]]) {
      const native = await runNative(bin, args);
      match(native.stdout, /^the vfork parent: signaled 9\nthe orphaned child still runs: 1\n/m);
      for (const vfork of ["", "copy"]) {
        const c = hermituxCommand(bin, args, { flags: guestFlags(bin) });
        const r = await new Deno.Command(c.cmd, {
          args: c.args,
          env: { ...c.env, HERMITUX_VFORK: vfork },
          stdin: "null",
        }).output();
        const what = `${args} HERMITUX_VFORK=${vfork}: ${new TextDecoder().decode(r.stderr)}`;
        equal(new TextDecoder().decode(r.stdout), native.stdout, what);
        equal(r.code, native.code, what);
      }
    }
  });

  Deno.test(`${tc}: kill to a child and a group, SIGCHLD (SA_RESTART, SA_NOCLDWAIT, SIG_IGN), sessions`, async () => {
    const out = await sameC(await fixture("proc_signals", tc));
    equal(out.code, 0);
    match(out.stdout, /^terminated child: signaled 15\nWTERMSIG==15 1$/m);
    match(out.stdout, /^c1 leads its group 1, c2 in c1's group 1, ours unchanged 1$/m);
    match(out.stdout, /^group child 1: signaled 15\ngroup child 2: signaled 15$/m);
    match(out.stdout, /^SIGCHLD handled 3 times, siginfo matched 3$/m);
    match(out.stdout, /^read across SIGCHLD: 1 'x' ok$/m);
    match(out.stdout, /^wait with SA_NOCLDWAIT: -1 ECHILD$/m);
    match(out.stdout, /^wait with SIGCHLD ignored: -1 ECHILD\nthe child was reaped: -1 ESRCH$/m);
    match(
      out.stdout,
      /^child: in parent's group before 1, setsid==getpid 1, getsid\(0\)==getpid 1, getpgrp==getpid 1, getpgid\(0\)==getpid 1$/m,
    );
    match(out.stdout, /^parent: getsid\(child\)==child 1, getpgid\(child\)==child 1/m);
  });

  Deno.test(`${tc}: an orphan is reparented; fork from a multithreaded process`, async () => {
    const out = await sameC(await fixture("proc_orphan", tc));
    equal(out.code, 0);
    match(out.stdout, /^grandchild: ppid==child 1\ngrandchild: ppid changed 1$/m);
    match(out.stdout, /^the grandchild is not ours: -1 ECHILD$/m);
    match(
      out.stdout,
      /^forked child: printf works\nforked child: atfork 'prepare child ', spinner gone 1, malloc ok, thread 1 1\nforked child: exited 0$/m,
    );
    match(out.stdout, /^parent: atfork 'prepare parent ', spinner still runs 1$/m);
  });

  Deno.test(`${tc}: fork beside a thread inside mmap: the child gets no half-done mm state`, async () => {
    // Without fork holding the guest kernel's mm lock, the first child
    // whose copy caught it held spun in its own mmap until --timeout.
    const out = await sameC(await fixture("proc_fork_mm", tc));
    equal(out.code, 0);
    match(
      out.stdout,
      /^60 forks beside a mapping thread: 60 children mapped memory and exited 0$/m,
    );
  });

  Deno.test(`${tc}: a fork bomb meets --max-procs 16 with EAGAIN; every child is reaped`, async () => {
    const bin = await fixture("proc_forkbomb", tc);
    // Natively RLIMIT_NPROC does the same, but root is exempt from it: the
    // native run (a sanity check of the program) is as nobody.
    const asNobody = Deno.uid() === 0
      ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
      : [];
    const native = await runNative("/usr/bin/env", [
      "PATH=/usr/bin:/bin",
      ...asNobody,
      "prlimit",
      "--nproc=16",
      bin,
    ]);
    const vm = await runHermitux(bin, [], { flags: [...guestFlags(bin), "--max-procs", "16"] });
    const SHAPE = /^fork failed: EAGAIN\nchildren: (\d+)\n/;
    const TAIL =
      "reaped all 1, all killed by SIGKILL 1, then ECHILD\nfork after reaping: exited 8\n";
    for (const [who, r] of [["native", native], ["hermitux", vm]] as const) {
      equal(r.stderr, "", `${who}: ${r.stderr}`);
      equal(r.code, 0, `${who}: ${r.stdout}`);
      match(r.stdout, SHAPE, who);
      ok(r.stdout.endsWith(TAIL), `${who}: ${r.stdout}`);
    }
    // At most 16 guest processes (the limit may or may not count the first).
    const children = Number(SHAPE.exec(vm.stdout)![1]);
    ok(children >= 1 && children <= 16, `children: ${children}`);
  });
}

// ---- Programs that start processes, in twin working directories ----

/** Files to create (relative path → text) before a run. */
type Files = Record<string, string>;

const ENV = { PATH: "/usr/bin:/bin", LC_ALL: "C" };

async function twinDir(files: Files): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "hermitux-proc-" });
  for (const [path, text] of Object.entries(files)) {
    const full = `${dir}/${path}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(full, text);
  }
  return dir;
}

/** Runs one command in twin directories: natively in `a`, under hermitux in `b`. */
async function step(
  a: string,
  b: string,
  bin: string,
  args: string[],
  stdin?: string,
  flags: string[] = [],
): Promise<Outcome> {
  const [native, vm] = await Promise.all([
    runNative(bin, args, { cwd: a, stdin, env: ENV }),
    runHermitux(bin, args, {
      cwd: b,
      stdin,
      env: ENV,
      flags: [...TIMEOUT, "--memfs", "/tmp", ...flags],
    }),
  ]);
  deepStrictEqual(vm, native, `${bin} ${args.join(" ")}`);
  return vm;
}

/**
 * Runs `bin args` natively and under hermitux, each in its own copy of
 * `files` as the working directory (mounted read-write at its own path),
 * and asserts the same outcome; `flags` go to hermitux run.
 */
async function same(
  bin: string,
  args: string[],
  o: { stdin?: string; files?: Files; flags?: string[] } = {},
): Promise<Outcome> {
  const [a, b] = await Promise.all([twinDir(o.files ?? {}), twinDir(o.files ?? {})]);
  try {
    return await step(a, b, bin, args, o.stdin, o.flags);
  } finally {
    await Promise.all([a, b].map((d) => Deno.remove(d, { recursive: true })));
  }
}

function installed(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

const SHELLS: [string, string, string[]][] = [
  ["dash", "/usr/bin/dash", []],
  ["bash", "/usr/bin/bash", []],
  ["busybox sh", "/bin/busybox", ["sh"]],
];

/** Shell scripts, their expected stdout and status. */
const SCRIPTS: [string, string, string, number][] = [
  ["a pipeline of three programs", 'printf "b\\na\\n" | sort | tr a-z A-Z', "A\nB\n", 0],
  ["command substitution", 'x=$(echo hi); echo "got $x"', "got hi\n", 0],
  [
    "a subshell's cd stays in the subshell",
    '( cd /tmp; pwd ); case "$PWD" in /tmp) echo moved;; *) echo unchanged;; esac',
    "/tmp\nunchanged\n",
    0,
  ],
  [
    "$? after false, a subshell's exit and another shell's",
    'false; echo "false $?"; (exit 7); echo "subshell $?"; /bin/sh -c "exit 3"; echo "sh $?"',
    "false 1\nsubshell 7\nsh 3\n",
    0,
  ],
  [
    "a background job and wait",
    'sleep 0.1 & wait; echo "waited $?"; (exit 5) & wait $!; echo "job $?"',
    "waited 0\njob 5\n",
    0,
  ],
  [
    "kill of a background job",
    // The shell's own "Terminated" note (dash, busybox) comes or not by a race.
    'sleep 5 & kill $!; wait $! 2>/dev/null; echo "killed $?"',
    "killed 143\n",
    0,
  ],
  [
    "trap on EXIT, in the shell and in a subshell, and the exit status",
    "trap 'echo bye' EXIT; (trap 'echo sub-bye' EXIT; echo sub); echo main; exit 4",
    "sub\nsub-bye\nmain\nbye\n",
    4,
  ],
  [
    "redirections to a file in a mktemp directory",
    'd=$(mktemp -d); echo hello > "$d/f"; echo more >> "$d/f"; cat "$d/f"; wc -l < "$d/f"; ' +
    'rm -r "$d"; [ -e "$d" ] || echo removed',
    "hello\nmore\n2\nremoved\n",
    0,
  ],
  ["a here-document", "cat <<EOF\nline $((1 + 2))\n$(echo nested)\nEOF", "line 3\nnested\n", 0],
  ["SIGPIPE ends the writer of a pipeline", "yes | head -n 3", "y\ny\ny\n", 0],
  [
    "SIGPIPE ends the first of three when the second exits early",
    'yes | head -n 3 | wc -l; seq 100000 | head -1; (seq 100000; echo "seq $?" >&2) | head -1',
    "3\n1\n1\n",
    0,
  ],
  // With SIGPIPE ignored the writer's write fails with EPIPE; it says so on stderr.
  ["EPIPE when SIGPIPE is ignored", '(trap "" PIPE; yes | head -n 1)', "y\n", 0],
];

for (const [shell, bin, pre] of SHELLS) {
  for (const [what, script, stdout, code] of SCRIPTS) {
    Deno.test(`${shell}: ${what}`, async () => {
      if (!installed(bin)) return; // not on this machine: nothing to compare
      const r = await same(bin, [...pre, "-c", script]);
      equal(r.stdout, stdout);
      equal(r.code, code);
    });
  }
}

const PY = "/usr/bin/python3";

Deno.test("python3: subprocess.run with input, check_output with shell=True, call", async () => {
  const script = [
    "import subprocess",
    'r = subprocess.run(["sort"], input=b"pear\\napple\\nfig\\n", capture_output=True)',
    "print(r.stdout, r.returncode)",
    'print(subprocess.check_output("echo hi", shell=True))',
    'print(subprocess.call(["false"]), subprocess.call("exit 6", shell=True))',
  ].join("\n");
  const r = await same(PY, ["-c", script]);
  equal(r.stdout, "b'apple\\nfig\\npear\\n' 0\nb'hi\\n'\n1 6\n");
});

Deno.test("python3: os.fork, os.pipe and os.waitpid", async () => {
  const script = [
    "import os",
    "r, w = os.pipe()",
    "pid = os.fork()",
    "if pid == 0:",
    "    os.close(r)",
    '    os.write(w, b"from child")',
    "    os._exit(5)",
    "os.close(w)",
    "data = os.read(r, 100)",
    "got, st = os.waitpid(pid, 0)",
    "print(data, got == pid, os.waitstatus_to_exitcode(st))",
  ].join("\n");
  equal((await same(PY, ["-c", script])).stdout, "b'from child' True 5\n");
});

Deno.test("perl: system, qx and open with -|", async () => {
  const script = 'my $r = system("false"); print "system ", $r >> 8, "\\n"; ' +
    'print "qx ", qx(echo hi); ' +
    'open(my $p, "-|", "sort", "f.txt") or die; print "sorted $_" while <$p>; ' +
    'close($p); print "close $?\\n";';
  const r = await same("/usr/bin/perl", ["-e", script], { files: { "f.txt": "pear\napple\n" } });
  equal(r.stdout, "system 1\nqx hi\nsorted apple\nsorted pear\nclose 0\n");
});

Deno.test("lua5.4: io.popen and os.execute", async () => {
  const script = 'local p = io.popen("echo hi"); io.write(p:read("a")); print(p:close()); ' +
    'print(os.execute("exit 3"))';
  const r = await same("/usr/bin/lua5.4", ["-e", script]);
  equal(r.stdout, "hi\ntrue\texit\t0\nnil\texit\t3\n");
});

const MAKEFILE = [
  "all: out.txt count",
  "\t@echo done",
  "out.txt: a.txt b.txt",
  "\tcat a.txt b.txt > out.txt",
  "a.txt:",
  "\techo alpha > a.txt",
  "b.txt:",
  "\tprintf 'beta\\n' > $@",
  "count: out.txt",
  "\t@wc -l < out.txt",
  "fail:",
  "\t@echo failing; exit 3",
  ".PHONY: all count fail",
  "",
].join("\n");

Deno.test("make -f: a Makefile of several rules, and a failing one", async () => {
  const r = await same("/usr/bin/make", ["-f", "rules.mk"], { files: { "rules.mk": MAKEFILE } });
  equal(
    r.stdout,
    "echo alpha > a.txt\nprintf 'beta\\n' > b.txt\ncat a.txt b.txt > out.txt\n2\ndone\n",
  );
  const f = await same("/usr/bin/make", ["-f", "rules.mk", "fail"], {
    files: { "rules.mk": MAKEFILE },
  });
  equal(f.code, 2);
  match(f.stderr, /Error 3/);
});

Deno.test("xargs -n 1 echo", async () => {
  const r = await same("/usr/bin/xargs", ["-n", "1", "echo"], { stdin: "a b\nc\n" });
  equal(r.stdout, "a\nb\nc\n");
});

Deno.test("find DIR -name '*.c' -exec cat {} +", async () => {
  const r = await same("/usr/bin/find", ["src", "-name", "*.c", "-exec", "cat", "{}", "+"], {
    files: { "src/one.c": "int one;\n", "src/sub/two.c": "int two;\n", "src/three.h": "no\n" },
  });
  equal(r.stdout.split("\n").sort().join("\n"), "\nint one;\nint two;");
});

Deno.test("tar -czf and tar -xzf (through gzip)", async () => {
  const files = { "a.txt": "alpha\n".repeat(100), "d/b.txt": "beta\n" };
  const [a, b] = await Promise.all([twinDir(files), twinDir(files)]);
  try {
    await Promise.all([Deno.mkdir(`${a}/out`), Deno.mkdir(`${b}/out`)]);
    const tar = "/usr/bin/tar";
    equal((await step(a, b, tar, ["-czf", "t.tgz", "a.txt", "d"])).code, 0);
    const x = await step(a, b, tar, ["-xzvf", "t.tgz", "-C", "out"]);
    equal(x.stdout, "a.txt\nd/\nd/b.txt\n");
    for (const [path, text] of Object.entries(files)) {
      equal(await Deno.readTextFile(`${b}/out/${path}`), text, path);
    }
  } finally {
    await Promise.all([a, b].map((d) => Deno.remove(d, { recursive: true })));
  }
});

Deno.test("env -i A=1 sh -c 'echo $A'", async () => {
  const r = await same("/usr/bin/env", [
    "-i",
    "A=1",
    "/bin/sh",
    "-c",
    'echo "A=$A LC_ALL=${LC_ALL-unset}"',
  ]);
  equal(r.stdout, "A=1 LC_ALL=unset\n");
});

// ---- bash: pipeline statuses, jobs, coprocesses ----

const BASH = "/usr/bin/bash";

Deno.test("bash: PIPESTATUS of writers ended by SIGPIPE, and pipefail", async () => {
  const r = await same(BASH, [
    "-c",
    'seq 100000 | cat | head -2 | tr 1 x; echo "${PIPESTATUS[@]}"; ' +
    'set -o pipefail; yes | head -n 1 >/dev/null; echo "pipefail $?"',
  ]);
  equal(r.stdout, "x\n2\n141 141 0 0\npipefail 141\n");
});

Deno.test("bash: wait -n, jobs, kill %N, wait -n -p", async () => {
  const r = await same(BASH, [
    "-c",
    '(exit 3) & sleep 5 & wait -n; echo "wait -n $?"; jobs; kill %2; wait %2; echo "killed $?"; ' +
    "jobs; sleep 0.3 & (sleep 0.1; exit 4) & wait -n -p who; " +
    'echo "status $? first $((who == $!))"; wait; echo "rest $?"',
  ]);
  equal(
    r.stdout,
    "wait -n 3\n[2]+  Running                 sleep 5 &\nkilled 143\nstatus 4 first 1\nrest 0\n",
  );
});

Deno.test("bash: a coprocess", async () => {
  const r = await same(BASH, [
    "-c",
    'coproc tr a-z A-Z; echo hello >&"${COPROC[1]}"; exec {COPROC[1]}>&-; ' +
    'read -r line <&"${COPROC[0]}"; echo "$line"; wait $COPROC_PID; echo "coproc $?"',
  ]);
  equal(r.stdout, "HELLO\ncoproc 0\n");
});

Deno.test("bash: a subshell's ulimit and umask stay in the subshell", async () => {
  // Native limits differ between machines: the shape, and the same as native.
  const r = await same(BASH, [
    "-c",
    'n=$(ulimit -n); (ulimit -n 100; ulimit -n); [ "$(ulimit -n)" = "$n" ] && echo kept; ' +
    "ulimit -Sn 50; (ulimit -Sn 60; ulimit -Sn); ulimit -Sn; umask 022; (umask 077; umask); umask",
  ]);
  equal(r.stdout, "100\nkept\n60\n50\n0077\n0022\n");
});

// ---- timeout, nohup, nice ----

Deno.test("timeout: the limit (124), the command's status, --preserve-status, -s, -k", async () => {
  const r = await same("/bin/sh", [
    "-c",
    'timeout 0.5 sleep 5; echo "timed out $?"; timeout 5 sh -c "exit 3"; echo "exit $?"; ' +
    'timeout --preserve-status 0.3 sleep 5; echo "preserved $?"; ' +
    'timeout -s INT 0.3 sleep 5; echo "int $?"; ' +
    'timeout -k 0.2 -s CONT 0.2 sleep 5; echo "killed $?"',
  ]);
  equal(r.stdout, "timed out 124\nexit 3\npreserved 143\nint 124\nkilled 137\n");
});

Deno.test("nohup: SIGHUP ignored through execve; a failing and a missing command", async () => {
  const r = await same("/bin/sh", [
    "-c",
    'nohup sh -c "kill -HUP \\$\\$; echo survived"; echo "nohup $?"; ' +
    'nohup false; echo "false $?"; nohup /nonexistent; echo "missing $?"',
  ]);
  equal(r.stdout, "survived\nnohup 0\nfalse 1\nmissing 127\n");
});

Deno.test("nice: the niceness is set, inherited through fork and execve, and read", async () => {
  const r = await same("/bin/sh", [
    "-c",
    'nice; nice -n 5 nice; nice -n 3 sh -c "nice; (nice -n 2 nice); nice"; nice -n 50 nice',
  ]);
  equal(r.stdout, "0\n5\n3\n5\n3\n19\n");
});

// ---- python3 multiprocessing with the fork start method ----

/**
 * multiprocessing's semaphores are sem_open files in /dev/shm (the CLI's
 * default mounts have a private one), mapped MAP_SHARED by every worker.
 */
const SHM: string[] = [];

Deno.test("python3: multiprocessing Pool(1) with fork: map, apply_async, imap, close, join", async () => {
  const script = [
    "import multiprocessing as mp, os",
    "def f(x):",
    "    return x * x",
    "def pid(_):",
    "    return os.getpid()",
    'if __name__ == "__main__":',
    '    ctx = mp.get_context("fork")',
    "    p = ctx.Pool(1)",
    "    print(p.map(f, range(10)))",
    "    print(p.apply_async(f, (7,)).get(timeout=60))",
    "    print(list(p.imap(f, [3, 4])), sorted(p.imap_unordered(f, [5, 6])))",
    "    print(p.apply(pid, (0,)) != os.getpid())",
    "    p.close()",
    "    p.join()",
    "    with ctx.Pool(1) as q:",
    "        print(q.starmap(pow, [(2, 3), (3, 2)]))",
    '    print("done")',
  ].join("\n");
  const r = await same(PY, ["-c", script], { flags: SHM });
  equal(
    r.stdout,
    "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\n49\n[9, 16] [25, 36]\nTrue\n[8, 9]\ndone\n",
  );
});

// Two workers share the task pipe under a SemLock: a POSIX semaphore in a
// /dev/shm file mapped MAP_SHARED by both, waited on with futexes that wake
// across processes. Without shared pages both took the lock at once and
// split a task between them (UnpicklingError), and the map never ended.
Deno.test({
  name: "python3: multiprocessing Pool(2) with fork: workers share their locks",
  fn: async () => {
    const script = [
      "import multiprocessing as mp",
      "def f(x):",
      "    return x * x",
      'if __name__ == "__main__":',
      '    p = mp.get_context("fork").Pool(2)',
      "    print(p.map(f, range(10)))",
      "    p.close()",
      "    p.join()",
    ].join("\n");
    const r = await same(PY, ["-c", script], { flags: SHM });
    equal(r.stdout, "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\n");
  },
});

// Its call queue is bounded by a BoundedSemaphore the parent acquires and
// the worker releases: released in a copy of its own, it went past its
// bound ("semaphore or lock released too many times", BrokenProcessPool).
Deno.test({
  name: "python3: concurrent.futures.ProcessPoolExecutor(2) with fork",
  fn: async () => {
    const script = [
      "import multiprocessing as mp",
      "from concurrent.futures import ProcessPoolExecutor",
      "def f(x):",
      "    return x * x",
      'if __name__ == "__main__":',
      '    with ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as ex:',
      "        print(list(ex.map(f, range(10))))",
    ].join("\n");
    const r = await same(PY, ["-c", script], { flags: SHM });
    equal(r.stdout, "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\n");
  },
});

// ---- git starts its pager ----

/** A repository of two commits, the same each time (fixed names and dates). */
async function gitRepo(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "hermitux-git-" });
  const env = {
    PATH: "/usr/bin:/bin",
    HOME: dir,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_AUTHOR_NAME: "Ada",
    GIT_AUTHOR_EMAIL: "ada@example.com",
    GIT_COMMITTER_NAME: "Ada",
    GIT_COMMITTER_EMAIL: "ada@example.com",
    GIT_AUTHOR_DATE: "2001-02-03T04:05:06Z",
    GIT_COMMITTER_DATE: "2001-02-03T04:05:06Z",
  };
  const git = async (...args: string[]) => {
    const r = await new Deno.Command("git", { args, cwd: dir, env, clearEnv: true }).output();
    if (!r.success) throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  };
  await git("init", "-q", "-b", "main", ".");
  await Deno.writeTextFile(`${dir}/a.txt`, "alpha\n");
  await git("add", "a.txt");
  await git("commit", "-q", "-m", "first commit");
  await Deno.writeTextFile(`${dir}/b.txt`, "beta\n");
  await git("add", "b.txt");
  await git("commit", "-q", "-m", "second commit");
  return dir;
}

const sq = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/**
 * Runs `argv` natively and under hermitux with a terminal as stdout
 * (script(1) makes one; git starts a pager only then), in `cwd`.
 */
async function onTerminal(cwd: string, argv: string[], env: Record<string, string>) {
  const script = (cmd: string[], more: Record<string, string>) =>
    runNative("/usr/bin/script", ["-qec", cmd.map(sq).join(" "), "/dev/null"], {
      cwd,
      env: { ...env, ...more },
    });
  const h = hermituxCommand(argv[0], argv.slice(1), {
    env,
    flags: [...TIMEOUT, "--memfs", "/tmp"],
  });
  const [native, vm] = await Promise.all([
    script(argv, {}),
    script([h.cmd, ...h.args], h.env),
  ]);
  deepStrictEqual(vm, native, argv.join(" "));
  return vm;
}

Deno.test("git log through its pager (GIT_PAGER, PAGER), stdout a terminal", async () => {
  if (!installed("/usr/bin/git") || !installed("/usr/bin/script")) return;
  const repo = await gitRepo();
  try {
    const env = { PATH: "/usr/bin:/bin", HOME: repo, GIT_CONFIG_NOSYSTEM: "1", LC_ALL: "C" };
    // A pager that changes the text shows the output went through it.
    const log = await onTerminal(repo, ["/usr/bin/git", "log"], {
      ...env,
      GIT_PAGER: "tr a-z A-Z",
    });
    match(log.stdout, /^COMMIT [0-9A-F]{40} \(HEAD -> MAIN\)\r\nAUTHOR: ADA <ADA@EXAMPLE.COM>\r\n/);
    match(log.stdout, /^ {4}SECOND COMMIT\r\n\r\nCOMMIT [0-9A-F]{40}\r\n/m);
    ok(log.stdout.endsWith("    FIRST COMMIT\r\n"), log.stdout);
    const oneline = await onTerminal(repo, ["/usr/bin/git", "-p", "log", "--oneline"], {
      ...env,
      PAGER: "sed s/^/paged:/",
    });
    match(
      oneline.stdout,
      /^paged:[0-9a-f]{7} \(HEAD -> main\) second commit\r\npaged:[0-9a-f]{7} first commit\r\n$/,
    );
  } finally {
    await Deno.remove(repo, { recursive: true });
  }
});
