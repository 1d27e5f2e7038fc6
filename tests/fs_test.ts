// Files through the mount table: the same results as natively inside the
// working directory, and no way out of the mounts.
import { deepStrictEqual, equal } from "node:assert/strict";
import { fixture, inTempDir, runHermitux, runNative, type Toolchain } from "./fixtures.ts";

for (
  const [tc, name]
    of (["musl-static", "glibc-static", "glibc-dynamic", "musl-dynamic"] as Toolchain[]).flatMap((
      tc,
    ) =>
      [
        "fs_files",
        "mmap_file",
        "mmap_shared",
        "proc_dev",
        "poll_wait",
        "umask_modes",
        "statfs",
        "locks",
        "copy",
        "dirs",
        "open_flags",
        "utime",
        "proc_fd",
        "rlimits",
        "xattr",
        "sockets",
        "blocking_read",
        "blocking_write",
        "pipe_bigwrite",
        "mprotect",
        "random",
        "pipes",
        "renames",
        "links",
        "truncation",
        "sigpipe",
      ].map((n) => [tc, n] as const)
    )
) {
  Deno.test(`${tc}: ${name} in the working directory matches native`, async () => {
    const bin = await fixture(name, tc);
    const native = await inTempDir((cwd) => runNative(bin, [], { cwd }));
    const vm = await inTempDir(async (cwd) => {
      // sockets uses TCP and UDP on loopback: the network grant for that.
      const flags = name === "sockets" ? ["--allow-net=127.0.0.1"] : [];
      const out = await runHermitux(bin, [], { cwd, flags });
      deepStrictEqual([...Deno.readDirSync(cwd)], []); // it cleaned up after itself
      return out;
    });
    deepStrictEqual(vm, native);
    equal(native.code, name === "sigpipe" ? 141 : 0); // sigpipe dies of SIGPIPE on purpose
  });
}

for (const tc of ["musl-static", "glibc-static", "glibc-dynamic"] as Toolchain[]) {
  Deno.test(`${tc}: a MAP_SHARED mapping written back at exit keeps the file's size and pwrites`, async () => {
    const bin = await fixture("mmap_shared", tc);
    const run = (f: typeof runNative) =>
      inTempDir(async (cwd) => {
        const out = await f(bin, ["exit"], { cwd });
        return { out, file: await Deno.readTextFile(`${cwd}/e.dat`) };
      });
    const native = await run(runNative), vm = await run(runHermitux);
    deepStrictEqual(vm, native);
    equal(native.file, "AB2345pw89");
  });
}

/** Runs fs_probe with explicit mounts only; returns its lines. */
async function probe(mounts: string[], ops: string[], flags: string[] = []) {
  const bin = await fixture("fs_probe", "musl-static");
  const r = await runHermitux(bin, ops, {
    flags: ["--no-default-mounts", ...mounts.flatMap((m) => ["--mount", m]), ...flags],
  });
  equal(r.stderr, "");
  return r.stdout.trim().split("\n");
}

Deno.test("no path escapes a mount", async () => {
  await inTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/data/sub`, { recursive: true });
    await Deno.writeTextFile(`${dir}/data/inside.txt`, "inside\n");
    await Deno.writeTextFile(`${dir}/secret.txt`, "secret\n"); // next to the mount, not in it
    await Deno.symlink("/etc/passwd", `${dir}/data/abs`); // made on the host
    await Deno.symlink("../secret.txt", `${dir}/data/up`);
    await Deno.symlink("../../../../../../../../etc/passwd", `${dir}/data/sub/deep`);
    await Deno.symlink("/data/inside.txt", `${dir}/data/sub/good`);
    const lines = await probe([`${dir}/data:/data`], [
      "read:/data/inside.txt",
      "read:/data/sub/good",
      "open:/etc/passwd",
      "open:/data/../etc/passwd",
      "open:/data/../../../secret.txt",
      "open:/data/abs",
      "open:/data/up",
      "open:/data/sub/deep",
      "open:/proc/self/root/etc/passwd",
      "open:/proc/self/cwd/../secret.txt",
      "symlink:/etc/shadow:/data/mine",
      "open:/data/mine",
      "create:/data/../escape.txt",
      "create:/outside.txt",
      "chdir:/data/sub",
      "cwd",
      "open:../../secret.txt",
      "read:../inside.txt",
    ], ["--workdir", "/"]);
    deepStrictEqual(lines, [
      "read:/data/inside.txt OK inside",
      "read:/data/sub/good OK inside",
      "open:/etc/passwd ENOENT",
      "open:/data/../etc/passwd ENOENT",
      "open:/data/../../../secret.txt ENOENT",
      "open:/data/abs ENOENT",
      "open:/data/up ENOENT",
      "open:/data/sub/deep ENOENT",
      "open:/proc/self/root/etc/passwd ENOENT",
      "open:/proc/self/cwd/../secret.txt ENOENT",
      "symlink:/etc/shadow:/data/mine OK",
      "open:/data/mine ENOENT",
      "create:/data/../escape.txt EROFS", // outside every mount: the guest root is read-only
      "create:/outside.txt EROFS",
      "chdir:/data/sub OK",
      "cwd OK /data/sub",
      "open:../../secret.txt ENOENT",
      "read:../inside.txt OK inside",
    ]);
    // Nothing appeared outside the mount.
    deepStrictEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      ["data", "secret.txt"],
    );
  });
});

Deno.test("read-only mounts refuse every change with EROFS", async () => {
  await inTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/ro`);
    await Deno.mkdir(`${dir}/rw`);
    await Deno.writeTextFile(`${dir}/ro/f`, "data\n");
    const lines = await probe([`${dir}/ro:/ro:ro`, `${dir}/rw:/rw`], [
      "read:/ro/f",
      "create:/ro/new",
      "create:/ro/f",
      "mkdir:/ro/d",
      "unlink:/ro/f",
      "rename:/ro/f:/ro/g",
      "symlink:x:/ro/l",
      "rename:/ro/f:/rw/f",
      "create:/rw/new",
      "open:/ro/missing",
    ]);
    deepStrictEqual(lines, [
      "read:/ro/f OK data",
      "create:/ro/new EROFS",
      "create:/ro/f EROFS",
      "mkdir:/ro/d EROFS",
      "unlink:/ro/f EROFS",
      "rename:/ro/f:/ro/g EROFS",
      "symlink:x:/ro/l EROFS",
      "rename:/ro/f:/rw/f EXDEV",
      "create:/rw/new OK",
      "open:/ro/missing ENOENT",
    ]);
    deepStrictEqual([...Deno.readDirSync(`${dir}/ro`)].map((e) => e.name), ["f"]);
    equal(await Deno.readTextFile(`${dir}/ro/f`), "data\n");
  });
});

Deno.test("the CLI's default mounts: cwd read-write, system directories read-only", async () => {
  await inTempDir(async (dir) => {
    const bin = await fixture("fs_probe", "musl-static");
    const r = await runHermitux(bin, [
      "cwd",
      "create:here.txt",
      "stat:/usr/bin",
      "create:/etc/hermitux-test",
      "open:/root",
    ], { cwd: dir });
    deepStrictEqual(r.stdout.trim().split("\n"), [
      `cwd OK ${dir}`,
      "create:here.txt OK",
      "stat:/usr/bin OK",
      "create:/etc/hermitux-test EROFS",
      "open:/root ENOENT",
    ]);
    await Deno.stat(`${dir}/here.txt`);
  });
});

Deno.test("a mount deep inside --memfs: the directories on the way are there", async () => {
  await inTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/deep`);
    await Deno.writeTextFile(`${dir}/deep/f`, "f\n");
    const lines = await probe([`${dir}/deep:/scratch/a/b/c:ro`], [
      "stat:/scratch/a",
      "readlink:/scratch/a/b",
      "readlink:/",
      "realpath:/scratch/a/b/c/f",
      "read:/scratch/a/b/c/f",
    ], ["--memfs", "/scratch"]);
    deepStrictEqual(lines, [
      "stat:/scratch/a OK",
      "readlink:/scratch/a/b EINVAL",
      "readlink:/ EINVAL",
      "realpath:/scratch/a/b/c/f OK /scratch/a/b/c/f",
      "read:/scratch/a/b/c/f OK f",
    ]);
  });
});

Deno.test("--memfs: a private in-memory file system, gone after the run", async () => {
  // Every CLI run (other tests' too) has one for /dev/shm: look for this one's file.
  const left = () =>
    [...Deno.readDirSync("/dev/shm")].filter((e) => {
      if (!e.name.startsWith("hermitux-memfs-")) return false;
      try {
        return Deno.statSync(`/dev/shm/${e.name}/d/b`).isFile;
      } catch {
        return false;
      }
    });
  const lines = await probe([], [
    "cwd",
    "create:/scratch/a",
    "mkdir:/scratch/d",
    "rename:/scratch/a:/scratch/d/b",
    "stat:/scratch/d/b",
    "create:/elsewhere",
  ], ["--memfs", "/scratch", "--workdir", "/scratch"]);
  deepStrictEqual(lines, [
    "cwd OK /scratch",
    "create:/scratch/a OK",
    "mkdir:/scratch/d OK",
    "rename:/scratch/a:/scratch/d/b OK",
    "stat:/scratch/d/b OK",
    "create:/elsewhere EROFS",
  ]);
  equal(left().length, 0);
});

Deno.test("directories that only lead to mounts list them, with inodes of their own", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hermitux-view-test-" });
  try {
    const mounts = ["/usr", "/lib", "/lib64"].flatMap((d) => ["--mount", `${d}:${d}:ro`]);
    const flags = ["--no-default-mounts", ...mounts, "--mount", `${dir}:/data/x`, "--workdir", "/"];
    const run = (bin: string, ...args: string[]) => runHermitux(`/usr/bin/${bin}`, args, { flags });
    const ls = await run("ls", "-a", "/", "/data");
    equal(ls.stderr, "");
    equal(ls.stdout, "/:\n.\n..\ndata\nlib\nlib64\nusr\n\n/data:\n.\n..\nx\n");
    equal(
      (await run("stat", "-c", "%F %a", "/", "/data")).stdout,
      "directory 555\ndirectory 555\n",
    );
    // find compares the inodes of / and /data: one each, or it reports a loop.
    const find = await run(
      "find",
      "/",
      "-maxdepth",
      "2",
      "-path",
      "/usr",
      "-prune",
      "-o",
      "-path",
      "/lib",
      "-prune",
      "-o",
      "-print",
    );
    equal(find.stderr, "");
    deepStrictEqual(find.stdout.split("\n").sort(), [
      "",
      "/",
      "/data",
      "/data/x",
      "/lib64",
      "/lib64/ld-linux-x86-64.so.2",
    ]);
    // Nothing can be made there: read-only, as Linux says before it looks a name up.
    const mkdir = await run("mkdir", "/data/y");
    equal(
      mkdir.stderr,
      "/usr/bin/mkdir: cannot create directory '/data/y': Read-only file system\n",
    );
    const touch = await run("touch", "/new");
    equal(touch.stderr, "/usr/bin/touch: cannot touch '/new': Read-only file system\n");
    const rm = await run("rm", "/data/y");
    equal(rm.stderr, "/usr/bin/rm: cannot remove '/data/y': No such file or directory\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
