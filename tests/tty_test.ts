// Interactive shells on a terminal: job control's TIOCSPGRP/TIOCGPGRP
// name the guest's own process groups (src/syscalls/tty.ts). Before, the
// host's foreground group came back and `sh -i` stopped at "can't set tty
// process group". A real pty from python3's pty module, typed into.
import { equal, match, ok } from "node:assert/strict";
import { hermituxCommand } from "./fixtures.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function onTerminal(bin: string, args: string[], input: string) {
  const c = hermituxCommand(bin, args);
  const r = await new Deno.Command("python3", {
    args: [`${ROOT}tests/pty_run.py`, c.cmd, ...c.args],
    env: { ...c.env, PTY_INPUT: input, TERM: "dumb" },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(r.stdout).replaceAll("\r", "");
}

for (
  const [name, bin, args] of [
    ["busybox sh -i", "/bin/busybox", ["sh", "-i"]],
    ["bash -i", "/usr/bin/bash", ["--norc", "--noprofile", "-i"]],
  ] as const
) {
  Deno.test(`${name} on a terminal: job control, a background job, the exit status`, async () => {
    const out = await onTerminal(
      bin,
      [...args],
      "echo hi-$((6*7))\nsleep 0 & wait; echo bg-done\nexit 3\n",
    );
    ok(!/can't set tty process group|no job control/i.test(out), out);
    match(out, /^hi-42$/m);
    match(out, /^bg-done$/m);
    equal(/status (\d+)\n$/.exec(out)?.[1], "3", out);
  });
}
