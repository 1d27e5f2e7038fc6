// deno bench: in-process boot() → exit of a static hello world, and the
// cost per syscall in the guest kernel and through the host (by exit and
// exitless), each by a `syscall` trap and through a rewritten site
// (--rewrite=lazy), and natively for comparison.
import { boot, Vm } from "../mod.ts";
import { benchBinary, devNull } from "./common.ts";
import { fixture } from "../tests/fixtures.ts";

const hello = await fixture("hello", "musl-static");
const loop = await benchBinary("loop");
const nul = devNull();
const stdio: [number, number, number] = [0, nul, nul];
const N = 2000;

Deno.bench("boot → exit: static hello (musl)", { group: "boot", baseline: true }, async () => {
  await boot({ path: hello, stdio });
});

Deno.bench("boot → exit: static hello (glibc)", { group: "boot" }, async (b) => {
  const path = await fixture("hello", "glibc-static");
  b.start();
  await boot({ path, stdio });
  b.end();
});

for (const kind of ["none", "getpid", "write"]) {
  // Host calls by exit and exitless (write is the one the host serves).
  const transports = kind === "write" ? ["exit", "exitless"] as const : ["exitless"] as const;
  for (const hostCalls of transports) {
    for (const rewrite of ["off", "lazy"] as const) {
      const how = `${rewrite === "off" ? "syscall trap" : "rewritten call"}, ${hostCalls}`;
      Deno.bench(`${kind} ×${N} in one guest run, ${how}`, { group: kind }, async (b) => {
        await using vm = await Vm.create({
          path: loop,
          args: [kind, String(N)],
          stdio,
          rewrite,
          hostCalls,
        });
        b.start();
        vm.run();
        b.end();
      });
    }
  }
  Deno.bench(`${kind} ×${N} natively (process spawn included)`, { group: kind }, async () => {
    await new Deno.Command(loop, { args: [kind, String(N)], stdout: "null", stderr: "null" })
      .output();
  });
}
