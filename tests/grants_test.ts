// Grants: the network (--allow-net, against real listeners on loopback that
// must see nothing they were not granted), the environment (--allow-env) and
// the default /etc (no secrets). See SECURITY.md.
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { createSocket } from "node:dgram";
import { fixture, inTempDir, runHermitux, type Toolchain } from "./fixtures.ts";

const BUILDS: Toolchain[] = ["musl-static", "glibc-static", "glibc-dynamic"];
const ROOT = new URL("../", import.meta.url).pathname;

/** Host listeners that answer "pong" and record what reached them. */
async function listeners(dir: string) {
  const seen: string[] = [];
  const answer = (tag: string) => (c: import("node:net").Socket) => {
    c.on("data", (d) => {
      seen.push(`${tag} ${d}`);
      c.end("pong");
    });
    c.on("error", () => {});
  };
  const listen = (s: Server, at: number | string) =>
    new Promise<void>((ok) =>
      typeof at === "number" ? s.listen(at, "127.0.0.1", () => ok()) : s.listen(at, () => ok())
    );
  const tcp = createServer(answer("tcp")), other = createServer(answer("other"));
  const unix = createServer(answer("unix"));
  await listen(tcp, 0);
  await listen(other, 0);
  await listen(unix, `${dir}/host.sock`);
  const udp = createSocket("udp4");
  udp.on("message", (m) => seen.push(`udp ${m}`));
  await new Promise<void>((ok) => udp.bind(0, "127.0.0.1", () => ok()));
  const port = (s: Server) => (s.address() as { port: number }).port;
  return {
    seen,
    tcp: port(tcp),
    other: port(other),
    udp: udp.address().port,
    // A free port to bind: one a listener had, closed again.
    async free() {
      const s = createServer();
      await listen(s, 0);
      const p = port(s);
      await new Promise((ok) => s.close(ok));
      return p;
    },
    async close() {
      // What has arrived is handled first (a datagram waits in its socket until the loop runs).
      await new Promise((ok) => setTimeout(ok, 100));
      await Promise.all([tcp, other, unix].map((s) => new Promise((ok) => s.close(ok))));
      udp.close();
    },
  };
}

const lines = (s: string) => s.trim().split("\n");

for (const tc of BUILDS) {
  Deno.test(`${tc}: without --allow-net, TCP, UDP, sendmsg and bind are EACCES and nothing arrives`, async () => {
    await inTempDir(async (dir) => {
      const l = await listeners(dir);
      const free = await l.free();
      const bin = await fixture("net_probe", tc);
      const ops = [
        `tcp:127.0.0.1:${l.tcp}`,
        `tcp:127.0.0.1:${l.tcp}`,
        `udp:127.0.0.1:${l.udp}`,
        `udpc:127.0.0.1:${l.udp}`,
        `msg:127.0.0.1:${l.udp}`,
        `bind:127.0.0.1:${free}`,
        "listen",
        `tcp6:::ffff:127.0.0.1:${l.tcp}`,
        `unix:${dir}/host.sock`,
        "raw",
        `own:${dir}/mine.sock`,
      ];
      const r = await runHermitux(bin, ops, { cwd: dir });
      await l.close();
      deepStrictEqual(lines(r.stdout), [
        ...ops.slice(0, 6).map((op) => `${op} EACCES`),
        "listen EACCES",
        // An IPv4-mapped address is the IPv4 address it maps (or no IPv6 here).
        `${ops[7]} ${r.stdout.includes(`${ops[7]} EAFNOSUPPORT`) ? "EAFNOSUPPORT" : "EACCES"}`,
        `unix:${dir}/host.sock EACCES`,
        "raw EACCES",
        `own:${dir}/mine.sock OK ping`, // its own Unix socket needs no grant
      ]);
      deepStrictEqual(l.seen, []);
      // Each refusal is named once, by address.
      deepStrictEqual(
        lines(r.stderr).sort(),
        [
          `hermitux: connection to Unix socket ${dir}/host.sock denied (use --allow-net=unix:${dir}/host.sock)`,
          `hermitux: network access to 0.0.0.0:0 denied (use --allow-net)`,
          `hermitux: network access to 127.0.0.1:${free} denied (use --allow-net)`,
          `hermitux: network access to 127.0.0.1:${l.tcp} denied (use --allow-net)`,
          `hermitux: network access to 127.0.0.1:${l.udp} denied (use --allow-net)`,
          `hermitux: raw sockets denied (use --allow-net)`,
        ].sort(),
      );
      equal(r.code, 0);
    });
  });

  Deno.test(`${tc}: --allow-net=HOST:PORT reaches that port only; --allow-net reaches all`, async () => {
    await inTempDir(async (dir) => {
      const l = await listeners(dir);
      const free = await l.free();
      const bin = await fixture("net_probe", tc);
      const ops = [
        `tcp:127.0.0.1:${l.tcp}`,
        `tcp:127.0.0.1:${l.other}`,
        `udp:127.0.0.1:${l.udp}`,
        `bind:127.0.0.1:${free}`,
      ];
      const one = await runHermitux(bin, ops, {
        cwd: dir,
        flags: [`--allow-net=127.0.0.1:${l.tcp},unix:${dir}/host.sock`],
      });
      const unix = await runHermitux(bin, [`unix:host.sock`], {
        cwd: dir,
        flags: [`--allow-net=unix:${dir}`],
      });
      deepStrictEqual(lines(one.stdout), [
        `${ops[0]} OK pong`,
        `${ops[1]} EACCES`,
        `${ops[2]} EACCES`,
        `${ops[3]} EACCES`,
      ]);
      deepStrictEqual(lines(unix.stdout), ["unix:host.sock OK pong"]);
      const all = await runHermitux(bin, ops, { cwd: dir, flags: ["--allow-net"] });
      await l.close();
      deepStrictEqual(lines(all.stdout), [
        `${ops[0]} OK pong`,
        `${ops[1]} OK pong`,
        `${ops[2]} OK`,
        `${ops[3]} OK`,
      ]);
      equal(all.stderr, "");
      deepStrictEqual(l.seen.sort(), [
        "other ping",
        "tcp ping",
        "tcp ping",
        "udp ping",
        "unix ping",
      ]);
    });
  });
}

Deno.test("a Unix datagram sent with sendmsg to a host socket needs the grant too", async () => {
  await inTempDir(async (dir) => {
    // A host process reading datagrams at dir/d.sock (python3: Deno has no stable Unix datagrams).
    const server = new Deno.Command("python3", {
      args: [
        "-c",
        "import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\n" +
        "print('ready',flush=True)\ns.settimeout(20)\ntry: print(s.recv(64).decode(),flush=True)\n" +
        "except Exception: print('nothing',flush=True)",
        `${dir}/d.sock`,
      ],
      stdout: "piped",
    }).spawn();
    const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    const line = async () => {
      while (!buffered.includes("\n")) buffered += (await reader.read()).value ?? "\n";
      const at = buffered.indexOf("\n");
      const l = buffered.slice(0, at);
      buffered = buffered.slice(at + 1);
      return l;
    };
    equal(await line(), "ready");
    const bin = await fixture("net_probe", "musl-static");
    const denied = await runHermitux(bin, ["unixmsg:d.sock"], { cwd: dir });
    equal(denied.stdout, "unixmsg:d.sock EACCES\n");
    const granted = await runHermitux(bin, ["unixmsg:d.sock"], {
      cwd: dir,
      flags: [`--allow-net=unix:${dir}/d.sock`],
    });
    equal(granted.stdout, "unixmsg:d.sock OK\n");
    equal(await line(), "ping");
    reader.releaseLock();
    await server.status;
  });
});

Deno.test("python3 urllib: denied without the grant, 200 with it; names resolve through /etc/hosts", async () => {
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    () => new Response("hi"),
  );
  const port = server.addr.port;
  const url = `http://localhost:${port}/`;
  const script = `import urllib.request\nprint(urllib.request.urlopen(${
    JSON.stringify(url)
  }).status)`;
  try {
    const denied = await runHermitux("/usr/bin/python3", ["-c", script]);
    equal(denied.code, 1);
    match(denied.stderr, new RegExp(`network access to 127\\.0\\.0\\.1:${port} denied`));
    const granted = await runHermitux("/usr/bin/python3", ["-c", script], {
      flags: [`--allow-net=localhost:${port}`],
    });
    deepStrictEqual([granted.stdout, granted.stderr, granted.code], ["200\n", "", 0]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("busybox nc: refused without the grant, delivers with it", async () => {
  await inTempDir(async (dir) => {
    const l = await listeners(dir);
    const run = (flags: string[]) =>
      runHermitux("/bin/busybox", ["nc", "127.0.0.1", String(l.tcp)], { stdin: "hello", flags });
    const denied = await run([]);
    ok(denied.code !== 0);
    match(denied.stderr, new RegExp(`network access to 127\\.0\\.0\\.1:${l.tcp} denied`));
    const granted = await run([`--allow-net=127.0.0.1:${l.tcp}`]);
    await l.close();
    equal(granted.stdout, "pong");
    deepStrictEqual(l.seen, ["tcp hello"]);
  });
});

Deno.test("a name lookup is DNS through the same check (only granted names resolve)", async () => {
  const bin = await fixture("net_probe", "glibc-dynamic");
  // localhost comes from /etc/hosts; another name needs the resolver, which is not granted.
  const r = await runHermitux(bin, ["lookup:localhost", "lookup:hermitux-test.invalid"], {
    flags: ["--allow-net=127.0.0.1:9"],
  });
  deepStrictEqual(lines(r.stdout), [
    "lookup:localhost OK 127.0.0.1",
    "lookup:hermitux-test.invalid OK failed",
  ]);
  // Where /etc/resolv.conf names a server, the refusal names it (port 53).
  for (const line of lines(r.stderr).filter((l) => l)) {
    match(line, /^hermitux: network access to .*:53 denied/);
  }
});

Deno.test("--allow-net with a bad entry or an unknown name is a usage error", async () => {
  for (const grant of ["127.0.0.1:99999", "unix:relative", "no-such-host.invalid"]) {
    const r = await runHermitux("/bin/busybox", ["true"], { flags: [`--allow-net=${grant}`] });
    equal(r.code, 2, grant);
    match(r.stderr, /^hermitux: (bad|cannot resolve)/);
  }
});

/** What the test run sets for every CLI run (fixtures.ts passes the same). */
const PASSED = Object.fromEntries(
  ["HERMITUX_REWRITE", "HERMITUX_HOST_CALLS"].flatMap((k) => {
    const v = Deno.env.get(k);
    return v === undefined ? [] : [[k, v]];
  }),
);

/** Runs the CLI with the host environment `env` (nothing else). */
async function withHostEnv(env: Record<string, string>, args: string[]) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${ROOT}cli.ts`, "run", ...args],
    env: { ...env, ...PASSED },
    clearEnv: true,
  }).output();
  return new TextDecoder().decode(r.stdout);
}

Deno.test("--allow-env passes the host's environment, or only the names granted", async () => {
  const host = { PATH: "/usr/bin:/bin", FOO: "1", BAR_X: "2", BAR_Y: "3", SECRET_TOKEN: "s3cr3t" };
  equal(await withHostEnv(host, ["/bin/busybox", "env"]), "");
  const some = await withHostEnv(host, [
    "--allow-env=FOO,BAR_*",
    "--env",
    "BAR_Y=9",
    "/bin/busybox",
    "env",
  ]);
  deepStrictEqual(some.trim().split("\n").sort(), ["BAR_X=2", "BAR_Y=9", "FOO=1"]);
  const all = await withHostEnv(host, ["--allow-env", "--env", "NEW=x", "/bin/busybox", "env"]);
  // (What the test run passes to every CLI run, and Deno's own, left aside.)
  const own = (l: string) => l.startsWith("HERMITUX_") || l.startsWith("DENO_");
  deepStrictEqual(all.trim().split("\n").filter((l) => !own(l)).sort(), [
    "BAR_X=2",
    "BAR_Y=3",
    "FOO=1",
    "NEW=x",
    "PATH=/usr/bin:/bin",
    "SECRET_TOKEN=s3cr3t",
  ]);
});

Deno.test("the default /etc has what programs need and no secrets", async () => {
  const r = await runHermitux("/bin/busybox", [
    "sh",
    "-c",
    "for f in shadow gshadow ssh ssl/private sudoers pip.conf npmrc environment machine-id " +
    "resolv.conf; do test -e /etc/$f && echo has $f; done; " +
    "test -s /etc/ld.so.cache && test -s /etc/passwd && test -s /etc/nsswitch.conf && echo ok",
  ]);
  deepStrictEqual([r.stdout, r.stderr], ["ok\n", ""]);
  // resolv.conf comes with the network grant (where the host has one).
  const net = await runHermitux("/bin/busybox", ["sh", "-c", "test -e /etc/resolv.conf; echo $?"], {
    flags: ["--allow-net=127.0.0.1:9"],
  });
  let hostHas = true;
  try {
    Deno.statSync("/etc/resolv.conf");
  } catch {
    hostHas = false;
  }
  equal(net.stdout, hostHas ? "0\n" : "1\n");
  // The whole host /etc on request.
  const whole = await runHermitux("/bin/busybox", ["test", "-e", "/etc/shadow"], {
    flags: ["--mount", "/etc:/etc:ro"],
  });
  let hasShadow = true;
  try {
    Deno.statSync("/etc/shadow");
  } catch {
    hasShadow = false;
  }
  equal(whole.code, hasShadow ? 0 : 1);
});
