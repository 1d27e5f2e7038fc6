// BootOptions.stdin/stdout/stderr, as Deno.Command names them: piped output
// comes back in RunResult (from every process of the run), stdin from bytes,
// "null", host fds; nothing is left open afterwards.
import { deepStrictEqual, equal, ok, rejects } from "node:assert/strict";
import { boot, Vm } from "../mod.ts";
import { compileC, fixture } from "./fixtures.ts";

const text = (b?: Uint8Array) => b === undefined ? undefined : new TextDecoder().decode(b);
const BUSYBOX = "/bin/busybox";

Deno.test("stdout and stderr piped, stdin from bytes", async () => {
  const cat = await fixture("cat", "musl-static");
  const r = await boot({
    path: cat,
    stdin: new TextEncoder().encode("line one\nline two\n"),
    stdout: "piped",
    stderr: "piped",
  });
  equal(r.status, 0);
  equal(text(r.stdout), "line one\nline two\n");
  equal(text(r.stderr), "18 bytes\n");
  const bytes = new Uint8Array(300_000).map((_, i) => i % 251); // past any pipe's 64 KiB
  const big = await boot({ path: cat, stdin: bytes, stdout: "piped", stderr: "null" });
  deepStrictEqual(big.stdout, bytes);
  equal(big.stderr, undefined);
});

Deno.test("every process of the run writes into the piped stdout, in order", async () => {
  const r = await boot({
    path: BUSYBOX,
    args: ["sh", "-c", "echo a; (echo b); echo c | cat; echo err >&2; exit 3"],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    mounts: [{ host: "/", guest: "/", readOnly: true }], // busybox execs itself for the pipeline
  });
  equal(r.status, 3);
  equal(text(r.stdout), "a\nb\nc\n");
  equal(text(r.stderr), "err\n");
});

/** The number of open fds once it has not changed for 300 ms (background closes done). */
async function settledFds(): Promise<number> {
  const count = () => [...Deno.readDirSync("/proc/self/fd")].length;
  let last = count();
  for (let still = 0; still < 3;) {
    await new Promise((r) => setTimeout(r, 100));
    const now = count();
    still = now === last ? still + 1 : 0;
    last = now;
  }
  return last;
}

Deno.test("a host fd; a bad spec is a TypeError; no fd is left open", async () => {
  const hello = await fixture("hello", "musl-static");
  // A first boot opens what the process keeps for every later one (the
  // machine kept for the next VM, lazily made helpers): counted after it.
  await boot({ path: hello, stdout: "piped", stderr: "piped", stdin: new Uint8Array(1) });
  const before = await settledFds();
  for (let i = 0; i < 20; i++) {
    const r = await boot({
      path: hello,
      stdout: "piped",
      stderr: "piped",
      stdin: new Uint8Array(1),
    });
    equal(text(r.stdout), "hello, world\n");
  }
  const file = await Deno.makeTempFile();
  try {
    using f = await Deno.open(file, { write: true });
    // Deno 2 has no raw fds: /proc/self/fd names the one just opened.
    const fd = Number(
      [...Deno.readDirSync("/proc/self/fd")].map((e) => e.name)
        .find((n) => Deno.readLinkSync(`/proc/self/fd/${n}`) === file),
    );
    ok(fd > 2);
    equal((await boot({ path: hello, stdout: fd })).status, 0);
    f.close();
    equal(await Deno.readTextFile(file), "hello, world\n");
  } finally {
    await Deno.remove(file);
  }
  await rejects(() => boot({ path: hello, stdout: "loud" as "piped" }), TypeError);
  await rejects(() => boot({ path: hello, stdin: "piped" as "null" }), TypeError);
  // KVM's teardown of a VM closes its fds on a worker thread, later: settled first.
  const after = await settledFds();
  ok(after <= before, `${after} fds open after the boots, ${before} before`);
});

Deno.test("signal: an AbortSignal stops a running guest (status 137), computing or asleep", async () => {
  const spin = await compileC(
    "spin-forever",
    "int main(void) { volatile unsigned long n = 0; for (;;) n++; }",
    "musl-gcc",
    ["-static"],
  );
  for (const [path, args] of [[spin, []], [BUSYBOX, ["sleep", "100"]]] as const) {
    const t0 = performance.now();
    const r = await boot({ path, args: [...args], signal: AbortSignal.timeout(300) });
    equal(r.status, 137);
    equal(r.signal, 9);
    ok(performance.now() - t0 < 20_000, "stopped in time");
  }
  // Aborted already: it never runs far.
  const ac = new AbortController();
  ac.abort();
  equal((await boot({ path: spin, signal: ac.signal })).status, 137);
});

Deno.test("a sliced run loses no call at a slice's start (each served once, with its own result)", async () => {
  // Two doorbell calls in turn, for ~8 slices: a call whose exit went
  // unserved would return the last call's result. The second slice's start
  // once set the first vCPU running again over an exit waiting to be served.
  const calls = await compileC(
    "slice-calls",
    `#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct timespec t0, t;
	long n = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		int a = fcntl(0, F_GETFD), b = fcntl(fd, F_GETFD);
		if (a != 0 || b != FD_CLOEXEC) {
			printf("call %ld: %d %d\\n", n, a, b);
			return 1;
		}
		n++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 160);
	printf("ok\\n");
	return 0;
}
`,
    "musl-gcc",
    ["-static"],
  );
  for (let i = 0; i < 3; i++) {
    await using vm = await Vm.create({ path: calls, stdin: "null", stdout: "piped" });
    const r = await vm.runAsync();
    equal(text(r.stdout), "ok\n");
    equal(r.status, 0);
  }
});

Deno.test("Vm.stdout streams while the guest runs; RunResult still has it all", async () => {
  await using vm = await Vm.create({
    path: BUSYBOX,
    args: ["sh", "-c", "echo first; sleep 1; echo second; echo err >&2"],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    mounts: [{ host: "/", guest: "/", readOnly: true }],
  });
  const reader = vm.stdout!.getReader();
  let ended = false;
  const run = vm.runAsync().then((r) => {
    ended = true;
    return r;
  });
  const first = await reader.read();
  equal(text(first.value), "first\n");
  equal(ended, false); // it came while the guest still ran (asleep for a second)
  let rest = "";
  for (let c = await reader.read(); !c.done; c = await reader.read()) rest += text(c.value);
  equal(rest, "second\n");
  const r = await run;
  equal(r.status, 0);
  equal(text(r.stdout), "first\nsecond\n");
  equal(text(r.stderr), "err\n");
  equal(await new Response(vm.stderr).text(), "err\n");
});
