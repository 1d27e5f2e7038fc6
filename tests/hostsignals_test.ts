// BootOptions.signals: signals from outside the run reach its first process
// (what the OCI runtime's `kill` needs), whatever loop runs it: one process
// alone (a sleep), several (a shell waiting for a child), a handler run.
// And HostSignals: a real SIGTERM sent to a host process that holds a VM.
import { equal, match } from "node:assert/strict";
import { boot } from "../mod.ts";
import type { SignalSource } from "../src/vm/hostsignals.ts";

const BUSYBOX = "/bin/busybox";
const text = (b?: Uint8Array) => new TextDecoder().decode(b);
const ROOT_RO = [{ host: "/", guest: "/", readOnly: true }];

/** Gives `signo` once, `afterMs` after the first look. */
function later(signo: number, afterMs: number): SignalSource {
  let at: number | undefined, given = false;
  return {
    take() {
      at ??= Date.now() + afterMs;
      if (given || Date.now() < at) return [];
      given = true;
      return [signo];
    },
  };
}

Deno.test("a signal from outside ends a sleeping process (143 for SIGTERM)", async () => {
  const r = await boot({
    path: BUSYBOX,
    args: ["sleep", "100"],
    signals: later(15, 300),
    timeout: 120,
    stdin: "null",
  });
  equal(r.timedOut, false);
  equal(r.signal, 15);
  equal(r.status, 143);
});

Deno.test("a shell's trap runs for a signal from outside while it waits for a child", async () => {
  const r = await boot({
    path: BUSYBOX,
    args: ["sh", "-c", "trap 'echo got TERM; exit 7' TERM; echo ready; sleep 100 & wait"],
    signals: later(15, 1500),
    timeout: 120,
    stdin: "null",
    stdout: "piped",
    mounts: ROOT_RO,
  });
  equal(r.timedOut, false);
  equal(text(r.stdout), "ready\ngot TERM\n");
  equal(r.status, 7);
});

Deno.test("HostSignals: a SIGTERM sent to the host process reaches the guest", async () => {
  // A child Deno holds the VM; its SIGTERM handler-less guest ends with 143,
  // a guest trapping SIGUSR1 goes on after it.
  const script = `
    import { boot } from "${new URL("../mod.ts", import.meta.url)}";
    import { HostSignals } from "${new URL("../src/vm/hostsignals.ts", import.meta.url)}";
    const signals = await HostSignals.start();
    console.log("ready");
    const r = await boot({ path: "${BUSYBOX}", mounts: [{ host: "/", guest: "/", readOnly: true }],
      args: ["sh", "-c", "trap 'echo usr1' USR1; while :; do sleep 0.1; done"], signals, timeout: 120 });
    signals.close();
    console.log("status", r.status);
    Deno.exit(0);
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("ready")) out += (await reader.read()).value ?? "";
  await new Promise((r) => setTimeout(r, 1000));
  child.kill("SIGUSR1");
  while (!out.includes("usr1")) out += (await reader.read()).value ?? "";
  child.kill("SIGTERM");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  const status = await child.status;
  equal(status.code, 0);
  match(out, /ready\nusr1\nstatus 143\n$/);
});
