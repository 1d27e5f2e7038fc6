// Real containerd (Debian's 1.6, from tests/setup.sh) running a busybox
// image built offline with umoci, with bin/hermitux-oci as its runc
// (`ctr run --runc-binary`): output, exit status, a pipeline, the image's
// environment and working directory, `ctr task kill`, a bind mount, a
// read-only root; a python3 image (Debian's python3 and the modules a
// script loads). containerd runs on a private socket, root and state
// directory. Skipped where containerd, ctr or umoci is missing or we are
// not root (docs/OCI.md).
import { equal, match, notEqual } from "node:assert/strict";
import {
  IMAGE,
  importBusybox,
  importPython,
  missing,
  PYTHON_IMAGE,
  RUNTIME,
  startContainerd,
} from "./oci/containerd.ts";

const why = missing();
if (why) console.error(`oci_containerd_test: skipped: ${why}`);

Deno.test({
  name: "containerd runs busybox images on hermitux (ctr run --runc-binary)",
  ignore: why !== undefined,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "hermitux-containerd-" });
    try {
      await using c = await startContainerd(dir);
      await importBusybox(c, dir);
      let n = 0;
      /** Waits until `ctr task ls` shows container `id` running. */
      const waitRunning = async (id: string) => {
        for (let i = 0;; i++) {
          const ls = await c.ctr(["task", "ls"]);
          if (new RegExp(`^${id}\\s+\\d+\\s+RUNNING`, "m").test(ls.stdout)) return;
          if (i === 600) throw new Error(`${id} never ran: ${ls.stdout}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      const run = (flags: string[], cmd: string[] = []) =>
        c.ctr(["run", "--rm", "--runc-binary", RUNTIME, ...flags, IMAGE, `h${n++}`, ...cmd]);

      await t.step("the image's command: echo hi", async () => {
        const r = await run([]);
        equal(r.stdout, "hi\n", r.stderr);
        equal(r.code, 0);
      });
      await t.step("an exit status comes back (7)", async () => {
        equal((await run([], ["sh", "-c", "exit 7"])).code, 7);
      });
      await t.step("a shell pipeline", async () => {
        const r = await run([], ["sh", "-c", "echo hello world | tr a-z A-Z | wc -c; echo $$"]);
        equal(r.stdout.split("\n")[0].trim(), "12", r.stderr);
      });
      await t.step("environment and working directory from the image, and --env", async () => {
        const r = await run(["--env", "EXTRA=1"], ["sh", "-c", "echo $GREETING $EXTRA $(pwd)"]);
        equal(r.stdout, "from-image 1 /work\n", r.stderr);
      });
      await t.step("ctr task kill (SIGTERM) ends a sleeping container: 143", async () => {
        const id = `h${n++}`;
        const running = c.ctr(["run", "--rm", "--runc-binary", RUNTIME, IMAGE, id, "sleep", "100"]);
        await waitRunning(id);
        equal((await c.ctr(["task", "kill", id])).code, 0);
        equal((await running).code, 143);
      });
      await t.step("ctr task exec: a second process in a running container", async () => {
        const id = `h${n++}`;
        const running = c.ctr(["run", "--rm", "--runc-binary", RUNTIME, IMAGE, id, "sleep", "100"]);
        await waitRunning(id);
        const r = await c.ctr([
          "task",
          "exec",
          "--exec-id",
          "e1",
          id,
          "sh",
          "-c",
          "echo from exec in $(pwd) with $GREETING; cat /etc/motd; exit 5",
        ]);
        equal(r.stdout, "from exec in /work with from-image\nfrom the image\n", r.stderr);
        equal(r.code, 5);
        equal((await c.ctr(["task", "kill", id])).code, 0);
        equal((await running).code, 143);
      });
      await t.step("a read-only bind mount", async () => {
        const host = `${dir}/shared`;
        Deno.mkdirSync(host);
        Deno.writeTextFileSync(`${host}/note`, "from the host\n");
        const r = await run(
          ["--mount", `type=bind,src=${host},dst=/mnt,options=rbind:ro`],
          ["sh", "-c", "cat /mnt/note; touch /mnt/x || echo refused"],
        );
        match(r.stdout, /^from the host\nrefused\n$/);
        equal([...Deno.readDirSync(host)].length, 1);
      });
      await t.step(
        "a python3 image: python3 -c, its standard modules, a pipe to a child",
        async () => {
          const script = "import json, subprocess\n" +
            "r = subprocess.run(['python3', '-c', 'print(6 * 7)'], capture_output=True, text=True)\n" +
            "print(json.dumps({'answer': int(r.stdout)}))";
          await importPython(c, dir, script);
          const r = await c.ctr([
            "run",
            "--rm",
            "--runc-binary",
            RUNTIME,
            PYTHON_IMAGE,
            `h${n++}`,
            "python3",
            "-c",
            script,
          ]);
          equal(r.stdout, '{"answer": 42}\n', r.stderr);
          equal(r.code, 0);
        },
      );
      await t.step("a read-only root refuses a write", async () => {
        const r = await run(["--read-only"], ["sh", "-c", "touch /work/x"]);
        notEqual(r.code, 0);
        match(r.stderr + r.stdout, /Read-only file system/);
        equal((await run([], ["sh", "-c", "touch /work/x && echo wrote"])).stdout, "wrote\n");
      });
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
