// Running a guest under `hermitux run --gdb 0` and Debian's gdb against it
// in batch mode: shared by tests/gdb_test.ts and the emulated-SVM subset.
import { ok } from "node:assert/strict";
import { hermituxCommand, type Outcome } from "./fixtures.ts";

const decoder = new TextDecoder();

/** A guest started with --gdb 0: the port it listens on, and how it ends. */
export async function startDebuggee(bin: string, args: string[] = []) {
  const c = hermituxCommand(bin, args, { flags: ["--gdb", "0"] });
  const child = new Deno.Command(c.cmd, {
    args: c.args,
    env: c.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const { promise: port, resolve: found } = Promise.withResolvers<number>();
  const errDone = (async () => {
    for await (const chunk of child.stderr) {
      stderr += decoder.decode(chunk);
      const m = /hermitux: gdb: listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) found(Number(m[1]));
    }
    found(0);
  })();
  const out = new Response(child.stdout).text();
  const done = (async (): Promise<Outcome> => {
    const [status, stdout] = await Promise.all([child.status, out, errDone]).then((
      [s, o],
    ) => [s, o] as const);
    return { stdout, stderr, code: status.code };
  })();
  return { port: await port, done };
}

/** Runs gdb in batch mode on `bin` under hermitux with the commands `ex`. */
export async function debug(
  bin: string,
  ex: string[],
  args: string[] = [],
): Promise<{ gdb: string; vm: Outcome }> {
  const { port, done } = await startDebuggee(bin, args);
  ok(port > 0, "no 'listening' line");
  const r = await new Deno.Command("gdb", {
    args: [
      "-batch",
      "-nx",
      "-ex",
      "set sysroot /",
      "-ex",
      "set confirm off",
      "-ex",
      `target remote 127.0.0.1:${port}`,
      ...ex.flatMap((e) => ["-ex", e]),
      bin,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(240_000),
  }).output();
  const gdb = decoder.decode(r.stdout) + decoder.decode(r.stderr);
  return { gdb, vm: await done };
}
