/**
 * An OCI bundle's `config.json` (the runtime spec's container
 * configuration) as hermitux boots it: what maps onto {@linkcode BootOptions}
 * (root, mounts, process, rlimits, hostname, annotations) and what is
 * accepted but not enforced (namespaces, cgroups, seccomp, capabilities:
 * the VM is the boundary; SECURITY.md). See docs/OCI.md.
 * @module
 */
import type { BootOptions } from "../vm/options.ts";
import { MEMORY, type MountSpec } from "../vfs/mounts.ts";
import { findInPath, parseSize } from "../cli/main.ts";
import { normalize } from "../vfs/path.ts";
import { ALLOW_NET, inBundle, MEMORY_SIZE, type OciSpec, SpecError } from "./config.ts";

export { readSpec, SpecError } from "./config.ts";

/** Mount types the guest provides itself (its own /proc) or that mean nothing in a VM. */
const SKIPPED = new Set(["proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2", "securityfs"]);

/** The default PATH a program name is looked up in when the config's environment has none. */
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** An rlimit value: undefined for none (RLIM_INFINITY, or past what a double holds exactly). */
function limit(v: number | undefined): number | undefined {
  return typeof v === "number" && v >= 0 && v < 2 ** 53 ? v : undefined;
}

/** What {@linkcode bootOptions} made of a spec. */
export interface Mapped {
  /** The options to boot the container's process with. */
  options: BootOptions;
  /** Parts of the spec hermitux skipped, one line each (said on stderr at create). */
  warnings: string[];
}

/**
 * The boot options of the container `spec` describes in `bundle` (an
 * absolute path): its root file system at the guest's `/`, its mounts,
 * process, limits and grants.
 */
export function bootOptions(bundle: string, spec: OciSpec): Mapped {
  const warnings: string[] = [];
  const proc = spec.process ?? {};
  const rootfs = inBundle(bundle, spec.root!.path);
  try {
    if (!Deno.statSync(rootfs).isDirectory) throw new Error("not a directory");
  } catch (e) {
    throw new SpecError(`root.path ${rootfs}: ${(e as Error).message}`);
  }
  const mounts: MountSpec[] = [{
    host: rootfs,
    guest: "/",
    readOnly: spec.root!.readonly ?? false,
  }];
  for (const m of spec.mounts ?? []) {
    if (typeof m.destination !== "string" || !m.destination.startsWith("/")) {
      throw new SpecError(`mount destination '${m.destination}' must be absolute`);
    }
    const options = m.options ?? [];
    const readOnly = options.includes("ro");
    const bind = m.type === "bind" || options.includes("bind") || options.includes("rbind");
    if (bind) {
      if (!m.source) throw new SpecError(`bind mount at ${m.destination} has no source`);
      const host = inBundle(bundle, m.source);
      let st;
      try {
        st = Deno.statSync(host);
      } catch (e) {
        throw new SpecError(`bind mount source ${host}: ${(e as Error).message}`);
      }
      if (!st.isDirectory) {
        // hermitux mounts directories; a file alone would need one of its own.
        warnings.push(`bind mount of file ${host} at ${m.destination} skipped (not supported)`);
        continue;
      }
      mounts.push({ host, guest: m.destination, readOnly });
    } else if (m.type === "tmpfs") {
      mounts.push({ host: MEMORY, guest: m.destination, readOnly });
    } else if (!SKIPPED.has(m.type ?? "")) {
      warnings.push(`mount of type ${m.type} at ${m.destination} skipped (not supported)`);
    }
  }
  const env: Record<string, string> = {};
  for (const e of proc.env ?? []) {
    const eq = e.indexOf("=");
    if (eq > 0) env[e.slice(0, eq)] = e.slice(eq + 1);
  }
  const cwd = normalize(proc.cwd || "/");
  if (!cwd.startsWith("/")) throw new SpecError(`process.cwd '${proc.cwd}' must be absolute`);
  const [bin, ...args] = proc.args!;
  // Found as the container's execve would: in its PATH, through its mounts.
  const search = env.PATH ?? DEFAULT_PATH;
  const path = bin.includes("/")
    ? normalize(bin.startsWith("/") ? bin : `${cwd}/${bin}`)
    : findInPath(bin, cwd, mounts, search);
  // findInPath falls back on the working directory, which PATH may not name.
  const dirs = search.split(":").filter((d) => d)
    .map((d) => normalize(d.startsWith("/") ? d : `${cwd}/${d}`));
  if (!bin.includes("/") && !dirs.includes(path.slice(0, path.lastIndexOf("/")) || "/")) {
    throw new SpecError(`exec: "${bin}": executable file not found in $PATH`);
  }
  const options: BootOptions = { path, argv0: bin, args, env, cwd, mounts };
  for (const r of proc.rlimits ?? []) {
    const soft = limit(r.soft);
    if (soft === undefined) continue;
    if (r.type === "RLIMIT_NOFILE") options.maxFds = Math.max(soft, 3);
    else if (r.type === "RLIMIT_NPROC") options.maxThreads = Math.max(soft, 1);
    else if (r.type === "RLIMIT_CPU") options.cpuTime = Math.max(soft, 1);
    else if (r.type === "RLIMIT_FSIZE") options.maxFileSize = soft;
  }
  if (spec.hostname) options.hostname = spec.hostname;
  const a = spec.annotations ?? {};
  const net = a[ALLOW_NET]?.trim();
  if (net) {
    options.allowNet = net === "true"
      ? true
      : net === "false"
      ? undefined
      : net.split(",").map((x) => x.trim()).filter((x) => x);
  }
  if (a[MEMORY_SIZE]) {
    try {
      options.memory = parseSize(a[MEMORY_SIZE]);
    } catch (e) {
      throw new SpecError(`annotation ${MEMORY_SIZE}: ${(e as Error).message}`);
    }
  }
  return { options, warnings };
}
