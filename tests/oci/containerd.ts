// A private containerd for the OCI tests and bench/oci.ts: its own socket,
// root and state under a temporary directory (the host's containerd, if
// any, is not touched), and a busybox image built offline with umoci
// (Debian's static busybox and its applets as symlinks) and imported.

const decoder = new TextDecoder();

/** The checkout's runtime, as containerd calls it. */
export const RUNTIME = new URL("../../bin/hermitux-oci", import.meta.url).pathname;

/** The image the helpers build. */
export const IMAGE = "hermitux.test/busybox:latest";

/** Why containerd cannot run here, or undefined when it can (root, the tools installed). */
export function missing(): string | undefined {
  if (Deno.uid() !== 0) return "not root";
  for (const tool of ["containerd", "ctr", "umoci"]) {
    const r = new Deno.Command("sh", { args: ["-c", `command -v ${tool}`] }).outputSync();
    if (!r.success) return `${tool} is not installed (tests/setup.sh installs it with apt)`;
  }
  return undefined;
}

/** Runs a command; throws with its stderr when it fails. */
export async function sh(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await new Deno.Command(cmd, { args, cwd, stdin: "null" }).output();
  if (!r.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${r.code}: ${decoder.decode(r.stderr)}`);
  }
  return decoder.decode(r.stdout);
}

/** A containerd of our own. */
export interface Containerd extends AsyncDisposable {
  /** Its socket (ctr -a). */
  socket: string;
  /** `ctr -a SOCKET ARGS`: status and output, stdout and stderr apart. */
  ctr(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Starts containerd under `dir` and waits until it answers. */
export async function startContainerd(dir: string): Promise<Containerd> {
  const socket = `${dir}/containerd.sock`;
  Deno.writeTextFileSync(
    `${dir}/config.toml`,
    [
      "version = 2",
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      "[grpc]",
      `  address = "${socket}"`,
      "[ttrpc]",
      `  address = "${socket}.ttrpc"`,
      "[debug]",
      '  address = ""',
      "[metrics]",
      '  address = ""',
      '[plugins."io.containerd.grpc.v1.cri"]',
      "  disable_tcp_service = true",
    ].join("\n") + "\n",
  );
  const daemon = new Deno.Command("containerd", {
    args: ["--config", `${dir}/config.toml`],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Its log goes to a file, so a full pipe never stalls it.
  const log = Deno.openSync(`${dir}/containerd.log`, { write: true, create: true });
  const logged = daemon.stderr.pipeTo(log.writable).catch(() => {});
  const ctr: Containerd["ctr"] = async (args, stdin) => {
    // A hung container fails its test instead of hanging the run.
    const child = new Deno.Command("timeout", {
      args: ["300", "ctr", "-a", socket, ...args],
      stdin: stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (stdin !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(stdin));
      await w.close();
    }
    const r = await child.output();
    return { code: r.code, stdout: decoder.decode(r.stdout), stderr: decoder.decode(r.stderr) };
  };
  for (let i = 0;; i++) {
    if ((await ctr(["version"])).code === 0) break;
    if (i === 300) {
      daemon.kill("SIGKILL");
      throw new Error(
        `containerd did not start: ${Deno.readTextFileSync(`${dir}/containerd.log`)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    socket,
    ctr,
    async [Symbol.asyncDispose]() {
      daemon.kill("SIGTERM");
      await daemon.status;
      await logged;
    },
  };
}

/**
 * Builds the busybox image offline in `dir` (umoci: an empty image, a
 * rootfs layer with /bin/busybox and applet links, a config with `cmd`,
 * `env` and the working directory) and imports it as {@linkcode IMAGE}.
 */
export async function importBusybox(c: Containerd, dir: string): Promise<void> {
  await buildImage(c, dir, IMAGE, (rootfs) => {
    for (const d of ["bin", "tmp", "etc", "work"]) {
      Deno.mkdirSync(`${rootfs}/${d}`, { recursive: true });
    }
    Deno.copyFileSync("/bin/busybox", `${rootfs}/bin/busybox`);
    Deno.chmodSync(`${rootfs}/bin/busybox`, 0o755);
    const applets = ["sh", "echo", "cat", "ls", "sleep", "env", "pwd", "tr", "wc", "touch", "true"];
    for (const a of applets) Deno.symlinkSync("busybox", `${rootfs}/bin/${a}`);
    Deno.writeTextFileSync(`${rootfs}/etc/motd`, "from the image\n");
  }, [
    "--config.cmd",
    "echo",
    "--config.cmd",
    "hi",
    "--config.env",
    "PATH=/bin",
    "--config.env",
    "GREETING=from-image",
    "--config.workingdir",
    "/work",
  ]);
}

/**
 * An image built offline in `dir` with umoci (an empty image, a rootfs
 * layer `fill` writes, a config with the `config` flags), imported into
 * containerd as `image`.
 */
async function buildImage(
  c: Containerd,
  dir: string,
  image: string,
  fill: (rootfs: string) => void | Promise<void>,
  config: string[],
): Promise<void> {
  const name = image.replace(/[^a-z0-9]+/g, "-");
  const layout = `${dir}/${name}-layout`, bundle = `${dir}/${name}-unpacked`;
  await sh("umoci", ["init", "--layout", layout]);
  await sh("umoci", ["new", "--image", `${layout}:latest`]);
  await sh("umoci", ["unpack", "--rootless", "--image", `${layout}:latest`, bundle]);
  await fill(`${bundle}/rootfs`);
  await sh("umoci", ["repack", "--image", `${layout}:latest`, bundle]);
  await sh("umoci", ["config", "--image", `${layout}:latest`, ...config]);
  await sh("tar", ["-C", layout, "-cf", `${dir}/${name}.tar`, "."]);
  const r = await c.ctr([
    "image",
    "import",
    "--base-name",
    image.split(":")[0],
    `${dir}/${name}.tar`,
  ]);
  if (r.code !== 0) throw new Error(`ctr image import: ${r.stderr}`);
}

/** The python3 image {@linkcode importPython} builds. */
export const PYTHON_IMAGE = "hermitux.test/python:latest";

/** What python3 runs `script` with on the host: its file, its libraries and every module it loads. */
async function pythonFiles(script: string): Promise<string[]> {
  // Debian's python3 (a PATH may name another one first: pyenv).
  const r = await new Deno.Command("/usr/bin/python3", {
    args: [
      "-c",
      `${script}\nimport sys, os\nfor m in list(sys.modules.values()):\n` +
      `  f = getattr(m, "__file__", None)\n  if f: print(os.path.realpath(f), file=sys.stderr)\n` +
      `print(os.path.realpath(sys.executable), file=sys.stderr)`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  const files = new TextDecoder().decode(r.stderr).trim().split("\n");
  const ldd = new TextDecoder().decode(
    (await new Deno.Command("ldd", { args: [files.at(-1)!], stdout: "piped" }).output()).stdout,
  );
  const libs = [...ldd.matchAll(/(\/\S+) \(0x/g)].map((m) => m[1]);
  return [...new Set([...files, ...libs])];
}

/**
 * Builds a Debian-like python3 image offline in `dir`: the host's python3,
 * the libraries it links and the standard modules `script` loads (with
 * their compiled caches), at their own paths, `/usr/bin/python3` a link to
 * the binary; imported as {@linkcode PYTHON_IMAGE}.
 */
export async function importPython(c: Containerd, dir: string, script: string): Promise<void> {
  const files = await pythonFiles(script);
  await buildImage(c, dir, PYTHON_IMAGE, (rootfs) => {
    const copy = (file: string) => {
      const to = `${rootfs}${file}`;
      Deno.mkdirSync(to.slice(0, to.lastIndexOf("/")), { recursive: true });
      Deno.copyFileSync(file, to);
    };
    for (const f of files) {
      copy(f);
      // The module's compiled cache, where Python looks for it: it starts faster.
      const m = /^(.*)\/([^/]+)\.py$/.exec(f);
      if (!m) continue;
      let cached: Deno.DirEntry[] = [];
      try {
        cached = [...Deno.readDirSync(`${m[1]}/__pycache__`)];
      } catch { /* none (sitecustomize in /etc) */ }
      for (const e of cached) {
        if (e.name.startsWith(`${m[2]}.`)) copy(`${m[1]}/__pycache__/${e.name}`);
      }
    }
    // ld.so where the binary names it, and python3 on PATH.
    const link = (target: string, at: string) => {
      try {
        Deno.lstatSync(`${rootfs}${at}`);
      } catch {
        Deno.mkdirSync(`${rootfs}${at.slice(0, at.lastIndexOf("/"))}`, { recursive: true });
        Deno.symlinkSync(target, `${rootfs}${at}`);
      }
    };
    link("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2");
    link(Deno.realPathSync("/usr/bin/python3"), "/usr/bin/python3");
    Deno.mkdirSync(`${rootfs}/tmp`);
  }, ["--config.cmd", "python3", "--config.env", "PATH=/usr/bin"]);
}
