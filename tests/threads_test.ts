// Threads: one vCPU per guest thread. C pthreads (glibc and musl, static and
// dynamic), C++ std::thread/std::async, OpenMP in C and Fortran and Python's
// threading, each compared with its native run; a churn of 1,000 threads
// leaves no host threads, fds or memory behind.
import { equal, match, ok } from "node:assert/strict";
import { assertSameAsNative, compileC, runHermitux } from "./fixtures.ts";

const DIR = new URL("./threads/", import.meta.url).pathname;

const BUILDS = [
  ["glibc-dynamic", "gcc", []],
  ["glibc-static", "gcc", ["-static"]],
  ["musl-static", "musl-gcc", ["-static"]],
  ["musl-dynamic", "musl-gcc", []],
] as const;

async function build(file: string, cc: string, flags: readonly string[]): Promise<string> {
  const source = await Deno.readTextFile(DIR + file);
  const ext = file.slice(file.lastIndexOf(".") + 1);
  return compileC(`thr-${file}-${cc}-${flags.join("")}`, source, cc, ["-pthread", ...flags], ext);
}

for (const [name, cc, flags] of BUILDS) {
  Deno.test(`${name}: pthreads (mutex, condvar, barrier, rwlock, TLS, keys)`, async () => {
    const out = await assertSameAsNative(await build("pthreads.c", cc, flags));
    equal(out.code, 0);
  });

  Deno.test(`${name}: exit() from a non-main thread ends the process`, async () => {
    const out = await assertSameAsNative(await build("exit_from_thread.c", cc, flags));
    equal(out.code, 42);
  });

  Deno.test(`${name}: timed waits on a thread end, also when already due`, async () => {
    const out = await assertSameAsNative(await build("timed_waits.c", cc, flags));
    equal(out.stdout, "timeouts 71 of 71\n");
  });

  Deno.test(`${name}: signals reach the thread they name, or one not blocking them`, async () => {
    const out = await assertSameAsNative(await build("thread_signals.c", cc, flags));
    equal(out.stdout.match(/ 1\n/g)?.length, 6);
  });

  Deno.test(`${name}: threads blocked in pipe reads do not hold each other up`, async () => {
    const out = await assertSameAsNative(await build("pipe_threads.c", cc, flags));
    equal(out.stdout, "thread read 4 'ping'\nmain read 4 'pong'\n");
  });

  Deno.test(`${name}: threads waiting in epoll_wait, poll and select hold no one up`, async () => {
    const out = await assertSameAsNative(await build("wait_threads.c", cc, flags));
    equal(
      out.stdout,
      "thread woke from epoll_wait: 1 'a'\nthread woke from poll: 1 'b'\n" +
        "thread woke from select: 1 'c'\nmain woke from epoll_wait: 1\nmain woke from poll: 1\n" +
        "main woke from select: 1\n",
    );
  });

  Deno.test(`${name}: threads blocked in accept and recv do not hold each other up`, async () => {
    const out = await assertSameAsNative(await build("socket_threads.c", cc, flags), [], {
      flags: ["--allow-net=127.0.0.1"],
    });
    equal(out.stdout, "server got 4 'ping'\nclient got 4 'pong'\n");
  });

  Deno.test(`${name}: 1,000 threads created and joined`, async () => {
    const out = await assertSameAsNative(await build("churn.c", cc, flags), ["1000"]);
    equal(out.stdout, "1016 threads, sum of squares 332834740\n");
  });
}

for (const flags of [[], ["-static"]]) {
  Deno.test(`C++ std::thread, std::async and exceptions in threads ${flags.join(" ")}`, async () => {
    await assertSameAsNative(await build("cxx_threads.cpp", "g++", flags));
  });
}

Deno.test("OpenMP in C: parallel for with reductions", async () => {
  await assertSameAsNative(await build("omp.c", "gcc", ["-fopenmp"]));
});

Deno.test("OpenMP in Fortran: parallel do with reductions", async () => {
  await assertSameAsNative(await build("omp.f90", "gfortran", ["-fopenmp"]));
});

Deno.test("a process clone sharing fds is ENOSYS, new namespaces EPERM, named once", async () => {
  const out = await runHermitux(await build("clone_refused.c", "gcc", []));
  equal(out.stdout, "files -1 ENOSYS\nnewns -1 EPERM\n".repeat(2));
  equal(
    out.stderr,
    // Named once per syscall: the first refused use says which.
    "hermitux: unsupported syscall clone (56): clone of a process sharing state (flags 0x411)\n",
  );
});

Deno.test("a fault on a thread ends the process, with a report naming the function", async () => {
  const out = await runHermitux(await build("thread_crash.c", "gcc", []));
  equal(out.code, 139);
  match(
    out.stderr,
    /guest killed by SIGSEGV: page fault: write at unmapped address 0x0\n +rip 0x[0-9a-f]+ <bad\+/,
  );
});

Deno.test("Python threading with a Queue, a Lock and a Timer", async () => {
  const out = await assertSameAsNative("/usr/bin/python3", [DIR + "py_queue.py"]);
  equal(out.stdout, "2646700 200 True 1\n");
});

Deno.test("thread churn leaves no host threads, fds or memory behind", async () => {
  // Its own process: `deno test --parallel` runs other test files in this one.
  const bin = await build("churn.c", "musl-gcc", ["-static"]);
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "--v8-flags=--expose-gc", DIR + "churn_host.ts", bin],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  equal(r.code, 0);
  const { before, after, again, short } = JSON.parse(new TextDecoder().decode(r.stdout));
  const counts = JSON.stringify({ before, after, again, short });
  // No growth: what a run starts (workers, vCPU fds) it ends.
  ok(after.threads <= before.threads && again.threads <= before.threads, `threads ${counts}`);
  ok(short.threads <= before.threads, `threads after 30 short runs ${counts}`);
  ok(after.fds <= before.fds && again.fds <= before.fds, `fds ${counts}`);
  ok(again.rssKiB - after.rssKiB < 32 * 1024, `RSS grew over a second churn: ${counts}`);
});
