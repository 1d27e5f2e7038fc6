// Real programs from Debian packages (mostly dynamically linked, loaded by
// ld.so through the default mounts), and C++ and Fortran programs built both
// dynamic and static, compared with their native runs in twin directories.
import { equal, match } from "node:assert/strict";
import { deepStrictEqual } from "node:assert/strict";
import { compileC, type Outcome, runHermitux, runNative } from "./fixtures.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Files to create (relative path → text) before a run. */
type Files = Record<string, string>;

/** A fixed mtime so listings (ls -l, tar tv) agree between the twin directories. */
const MTIME = new Date("2024-01-02T03:04:05Z");

async function twinDir(files: Files): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "hermitux-prog-" });
  for (const [path, text] of Object.entries(files)) {
    const full = `${dir}/${path}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(full, text);
    await Deno.utime(full, MTIME, MTIME);
  }
  return dir;
}

/**
 * Runs `bin args` natively and under hermitux, each in its own copy of
 * `files` as the working directory, and asserts the same outcome.
 */
async function same(
  bin: string,
  args: string[],
  o: { stdin?: string; files?: Files; prepare?: (dir: string) => Promise<void> } = {},
): Promise<Outcome> {
  const [a, b] = await Promise.all([twinDir(o.files ?? {}), twinDir(o.files ?? {})]);
  try {
    if (o.prepare) await Promise.all([o.prepare(a), o.prepare(b)]);
    const env = { PATH: "/usr/bin:/bin", LC_ALL: "C" };
    const [native, vm] = await Promise.all([
      runNative(bin, args, { cwd: a, stdin: o.stdin, env }),
      runHermitux(bin, args, { cwd: b, stdin: o.stdin, env }),
    ]);
    deepStrictEqual(vm, native, `${bin} ${args.join(" ")}`);
    return vm;
  } finally {
    await Promise.all([a, b].map((d) => Deno.remove(d, { recursive: true })));
  }
}

async function sh(dir: string, script: string): Promise<void> {
  const r = await new Deno.Command("/bin/sh", { args: ["-c", script], cwd: dir }).output();
  if (!r.success) throw new Error(`${script}: ${new TextDecoder().decode(r.stderr)}`);
}

const PY = "/usr/bin/python3";

Deno.test("python3 -c", async () => {
  equal((await same(PY, ["-c", "print(6 * 7)"])).stdout, "42\n");
});

Deno.test("python3 runs a script with arguments and exits with its status", async () => {
  const r = await same(PY, ["script.py", "one", "two words"], {
    files: { "script.py": "import sys\nprint(sys.argv)\nsys.exit(len(sys.argv))\n" },
  });
  equal(r.code, 3);
});

Deno.test("python3: json, sqlite3, hashlib and zlib extension modules", async () => {
  const script = `
import json, sqlite3, hashlib, zlib
print(json.dumps(json.loads('{"b": [1, 2, {"c": null}], "a": 1.5}'), sort_keys=True))
db = sqlite3.connect(":memory:")
db.execute("create table t (k text, v integer)")
db.executemany("insert into t values (?, ?)", [("x", 1), ("y", 2), ("x", 3)])
print(db.execute("select k, sum(v) from t group by k order by k").fetchall())
print(hashlib.sha256(b"hermitux").hexdigest(), hashlib.md5(b"abc").hexdigest())
data = b"hello " * 1000
packed = zlib.compress(data, 9)
print(len(packed), zlib.decompress(packed) == data, zlib.crc32(data))
`;
  const r = await same(PY, ["-c", script]);
  match(r.stdout, /^\{"a": 1.5, "b": \[1, 2, \{"c": null\}\]\}\n\[\('x', 4\), \('y', 2\)\]\n/);
});

Deno.test("python3: os.makedirs, os.listdir and files in the working directory", async () => {
  const script = `
import os
os.makedirs("a/b/c")
for name in ["a/one.txt", "a/b/two.txt"]:
    with open(name, "w") as f:
        f.write(name)
print(sorted(os.listdir("a")), sorted(os.listdir("a/b")))
print([(d, sorted(fs)) for d, _, fs in sorted(os.walk("a"))])
print(open("a/b/two.txt").read(), os.path.getsize("a/one.txt"))
`;
  await same(PY, ["-c", script]);
});

Deno.test("python3 reads stdin", async () => {
  const r = await same(PY, ["-c", "import sys; print(sum(int(l) for l in sys.stdin))"], {
    stdin: "1\n2\n3\n40\n",
  });
  equal(r.stdout, "46\n");
});

const LUA = "/usr/bin/lua5.4";

Deno.test("lua5.4 -e, a script and io.lines on stdin", async () => {
  equal(
    (await same(LUA, ["-e", 'print(2^10, string.format("%5.2f", math.pi))'])).stdout,
    "1024.0\t 3.14\n",
  );
  await same(LUA, ["s.lua", "x"], {
    files: {
      "s.lua": "local t = {}\nfor i = 1, 5 do t[#t + 1] = i * i end\n" +
        "print(table.concat(t, ','), arg[1])\nos.exit(5)\n",
    },
  });
  const r = await same(LUA, ["-e", "local n = 0 for l in io.lines() do n = n + #l end print(n)"], {
    stdin: "abc\ndefg\n",
  });
  equal(r.stdout, "7\n");
});

Deno.test("perl -e and perl -ne", async () => {
  equal(
    (await same("/usr/bin/perl", ["-e", 'print join(",", map { $_ * 2 } 1..5), "\\n"']))
      .stdout,
    "2,4,6,8,10\n",
  );
  const r = await same("/usr/bin/perl", ["-ne", "print if /b/"], { stdin: "abc\nxyz\nbbb\n" });
  equal(r.stdout, "abc\nbbb\n");
});

Deno.test("sqlite3 in memory and with a file database", async () => {
  equal(
    (await same("/usr/bin/sqlite3", [":memory:", "select 1 + 2, upper('x');"])).stdout,
    "3|X\n",
  );
  const sql = "create table t(a); insert into t values (1), (2), (3); select sum(a) from t;";
  await same("/usr/bin/sqlite3", ["test.db", sql]);
  await same("/usr/bin/sqlite3", ["test.db", "select count(*) from t;"], {
    prepare: (dir) => sh(dir, `sqlite3 test.db "${sql}"`),
  });
});

const TEXT = "pear 3\napple 10\nfig 7\nbanana 2\n";

Deno.test("gawk, jq, grep, sed and sort", async () => {
  equal(
    (await same("/usr/bin/gawk", ["{ s += $2 } END { print s, NR }"], { stdin: TEXT })).stdout,
    "22 4\n",
  );
  await same("/usr/bin/jq", ["-c", ".a[] | {x: .x, y: (.x * 2)}"], {
    stdin: '{"a": [{"x": 1}, {"x": 2}]}',
  });
  await same("/usr/bin/grep", ["-E", "^(pear|fig) "], { stdin: TEXT });
  await same("/usr/bin/grep", ["-r", "-n", "needle", "."], {
    files: { "d/a.txt": "hay\nneedle\n", "d/e/b.txt": "a needle here\n", "c.txt": "none\n" },
  });
  await same("/usr/bin/sed", ["-E", "s/([a-z]+) ([0-9]+)/\\2:\\1/"], { stdin: TEXT });
  await same("/usr/bin/sort", ["-k2", "-n", "-r"], { stdin: TEXT });
  equal((await same("/usr/bin/grep", ["-q", "kiwi"], { stdin: TEXT })).code, 1);
});

const FILES: Files = { "a.txt": "alpha\nbeta\ngamma\n", "b.txt": "alpha\nBETA\ngamma\n" };

Deno.test("sha256sum, gzip and xz", async () => {
  await same("/usr/bin/sha256sum", ["a.txt", "b.txt"], { files: FILES });
  await same("/usr/bin/gzip", ["-c", "-n", "a.txt"], { files: FILES });
  await same("/usr/bin/gzip", ["-d", "-c", "a.txt.gz"], {
    files: FILES,
    prepare: (dir) => sh(dir, "gzip -k a.txt"),
  });
  await same("/usr/bin/xz", ["-c", "a.txt"], { files: FILES });
});

Deno.test("tar lists and extracts", async () => {
  const prepare = (dir: string) => sh(dir, "tar cf t.tar a.txt b.txt && mkdir out");
  await same("/usr/bin/tar", ["tvf", "t.tar"], { files: FILES, prepare });
  const r = await same("/usr/bin/tar", ["xvf", "t.tar", "-C", "out"], { files: FILES, prepare });
  equal(r.stdout, "a.txt\nb.txt\n");
});

Deno.test("find, diff and ls -l", async () => {
  const files = { ...FILES, "d/c.txt": "x\n", "d/e/f.md": "y\n" };
  await same("/usr/bin/find", [".", "-name", "*.txt", "-type", "f"], { files });
  equal((await same("/usr/bin/diff", ["a.txt", "b.txt"], { files })).code, 1);
  await same("/bin/ls", ["-l", "a.txt", "b.txt", "d"], { files });
});

Deno.test("busybox sh -c runs a script of builtins", async () => {
  const script = 'for i in 1 2 3; do echo "n=$i"; done; x=$((6 * 7)); echo $x; ' +
    "test -f a.txt && echo yes; read line; echo got $line; exit 4";
  const r = await same("/bin/busybox", ["sh", "-c", script], { files: FILES, stdin: "in\n" });
  equal(r.code, 4);
});

for (
  const [lang, cc, file] of [["C++", "g++", "cpp_basics.cpp"], [
    "Fortran",
    "gfortran",
    "fortran_io.f90",
  ]]
) {
  for (const link of ["dynamic", "static"]) {
    Deno.test(`${lang} program, ${link}`, async () => {
      const source = await Deno.readTextFile(`${ROOT}tests/lang/${file}`);
      const ext = file.slice(file.lastIndexOf(".") + 1);
      const bin = await compileC(
        `${file}-${link}`,
        source,
        cc,
        link === "static" ? ["-static"] : [],
        ext,
      );
      await same(bin, ["arg"]);
      if (lang === "C++") equal((await same(bin, ["a", "b"])).code, 3);
    });
  }
}

const LIB_PROGRAM = {
  "f.c": "int f(void) { return 41; }\n",
  "m.c":
    '#include <stdio.h>\nint f(void);\nint main(void) { printf("%d\\n", f() + 1); return 0; }\n',
};
const buildLib = (dir: string) =>
  sh(
    dir,
    "gcc -shared -fPIC -o libf.so f.c && gcc -o m m.c -L. -lf && gcc -o hello -x c - " +
      "<<'EOF'\n#include <stdio.h>\nint main(int c, char **v) { printf(\"%d %s\\n\", c, v[0]); return 7; }\nEOF",
  );

Deno.test("shared libraries: LD_LIBRARY_PATH, and Linux's error for a missing one", async () => {
  const missing = await same("./m", [], { files: LIB_PROGRAM, prepare: buildLib });
  equal(missing.code, 127);
  match(missing.stderr, /error while loading shared libraries: libf\.so/);
  const env = { LD_LIBRARY_PATH: "." };
  const [a, b] = await Promise.all([twinDir(LIB_PROGRAM), twinDir(LIB_PROGRAM)]);
  try {
    await Promise.all([buildLib(a), buildLib(b)]);
    const [native, vm] = await Promise.all([
      runNative("./m", [], { cwd: a, env }),
      runHermitux("./m", [], { cwd: b, env }),
    ]);
    deepStrictEqual(vm, native);
    equal(vm.stdout, "42\n");
  } finally {
    await Promise.all([a, b].map((d) => Deno.remove(d, { recursive: true })));
  }
});

Deno.test("the dynamic loader run explicitly loads the program, as on Linux", async () => {
  const ldso = "/lib64/ld-linux-x86-64.so.2";
  const r = await same(ldso, ["./hello", "x"], { files: LIB_PROGRAM, prepare: buildLib });
  equal(r.stdout, "2 ./hello\n");
  equal(r.code, 7);
  const list = await runHermitux(ldso, ["--list", "/usr/bin/python3"]);
  equal(list.code, 0);
  match(list.stdout, /libc\.so\.6 => \/lib\/x86_64-linux-gnu\/libc\.so\.6/);
});

Deno.test("glibc selects the same CPU features (ifuncs, hwcaps, platform) as natively", async () => {
  const ldso = "/lib64/ld-linux-x86-64.so.2";
  const [native, vm] = await Promise.all([
    runNative(ldso, ["--list-diagnostics"]),
    runHermitux(ldso, ["--list-diagnostics"]),
  ]);
  // What glibc decided: platform, hwcaps subdirectories, active features,
  // preferred routines, thresholds and XSAVE sizes (raw CPUID words aside).
  // kvm_pvm's CPUID never shows RDPID (leaf 7 ECX bit 22) or XFD (leaf 0xd.1
  // EAX bit 4), which no libc routine depends on: masked.
  const MASK: Record<string, number> = {
    "x86.cpu_features.features[0x1].active[0x2]": ~(1 << 22),
    "x86.cpu_features.features[0x3].active[0x0]": ~(1 << 4),
  };
  const decided = (out: string) =>
    out.split("\n")
      .filter((l) => /^(x86\.|dl_platform=|dl_hwcaps_subdirs)/.test(l) && !l.includes("cpuid["))
      .map((l) => {
        const [k, v] = l.split("=");
        return k in MASK ? `${k}=${(Number(v) & MASK[k]) >>> 0}` : l;
      });
  equal(vm.code, 0);
  deepStrictEqual(decided(vm.stdout), decided(native.stdout));
  match(vm.stdout, /x86\.cpu_features\.preferred/);
});

Deno.test("node: files, crypto, timers and its worker threads (one waits in epoll_wait)", async () => {
  // Node comes with the npm that installs Deno here. Its platform threads
  // start while another sits in epoll_wait with no timeout: that wait used
  // to hold the host thread serving every other one (a hang until --timeout).
  // The README's machine has Node and npm (they install Deno): never skipped.
  const node = "/usr/bin/node";
  const script = [
    'const fs = require("fs"), crypto = require("crypto");',
    'fs.writeFileSync("out.txt", "hello from node\\n");',
    'console.log(fs.readFileSync("out.txt", "utf8").trim(), fs.readdirSync(".").sort());',
    'console.log(crypto.createHash("sha256").update("abc").digest("hex"));',
    'setTimeout(() => console.log("timer fired"), 20);',
    'Promise.resolve().then(() => console.log("microtask"));',
  ].join("\n");
  const out = await same(node, ["script.js"], { files: { "script.js": script } });
  equal(
    out.stdout,
    "hello from node [ 'out.txt', 'script.js' ]\n" +
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\nmicrotask\ntimer fired\n",
  );
});
