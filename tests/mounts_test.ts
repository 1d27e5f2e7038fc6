// Path resolution in the guest's view (src/vfs/mounts.ts): the one-walk
// fast path and the component-by-component walk must agree.
import { equal, throws } from "node:assert/strict";
import { MountTable } from "../src/vfs/mounts.ts";
import { SyscallError } from "../src/syscalls/errno.ts";

function tree(): { root: string; other: string } {
  const root = Deno.makeTempDirSync({ prefix: "hermitux-mounts-" });
  const other = Deno.makeTempDirSync({ prefix: "hermitux-mounts-" });
  Deno.mkdirSync(`${root}/a/b`, { recursive: true });
  Deno.writeTextFileSync(`${root}/a/b/file`, "x");
  Deno.writeTextFileSync(`${other}/target`, "y");
  Deno.symlinkSync("/other", `${root}/a/abs`); // absolute: the guest's /other, not the host's
  Deno.symlinkSync("b", `${root}/a/rel`);
  Deno.symlinkSync("/other/target", `${root}/a/b/last`);
  return { root, other };
}

function errno(f: () => unknown): number {
  try {
    f();
  } catch (e) {
    if (e instanceof SyscallError) return e.errno;
    throw e;
  }
  return 0;
}

Deno.test("mounts: paths resolve in the guest's view", () => {
  const { root, other } = tree();
  const m = new MountTable([
    { host: root, guest: "/", readOnly: false },
    { host: other, guest: "/other", readOnly: true },
  ]);
  try {
    const at = (path: string, cwd = "/", follow = true) => {
      const r = m.resolve(path, cwd, follow);
      return `${r.mount?.guest} ${r.rel}`;
    };
    equal(at("/a/b/file"), "/ a/b/file");
    equal(at("b/./file", "/a"), "/ a/b/file");
    equal(at("/a/b/../b/file"), "/ a/b/file");
    equal(at("/a/rel/file"), "/ a/b/file", "a relative symlink on the way");
    equal(at("/a/abs/target"), "/other target", "an absolute one, into another mount");
    equal(at("/a/b/last"), "/other target", "a final one, followed");
    equal(at("/a/b/last", "/", false), "/ a/b/last", "a final one, kept");
    equal(at("/a/b/new"), "/ a/b/new", "a missing last component may be created");
    equal(at("/other"), "/other ", "a mount's root");
    equal(errno(() => at("/a/missing/file")), 2, "ENOENT for a missing directory");
    equal(errno(() => at("/a/b/file/x")), 20, "ENOTDIR through a file");
    equal(errno(() => at("/a/abs/missing/x")), 2);
    throws(() => at(""));
  } finally {
    m.close();
    Deno.removeSync(root, { recursive: true });
    Deno.removeSync(other, { recursive: true });
  }
});
