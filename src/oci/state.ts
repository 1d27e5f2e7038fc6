/**
 * The OCI runtime's record of its containers: a directory per container
 * under the runtime's root (`--root`, default /run/hermitux-oci), holding
 * `state.json` and, while the container is created but not started, the
 * `start.sock` its holder process waits on. The status is worked out as
 * runc does: `stopped` once the holder process is gone (or a zombie, or
 * its pid now names another process), `created` while it waits to be
 * started, `running` otherwise.
 * @module
 */

/** The lifecycle states of the OCI runtime spec that hermitux reports. */
export type Status = "creating" | "created" | "running" | "stopped";

/** What `state.json` holds. */
export interface ContainerRecord {
  /** The container's id. */
  id: string;
  /** The host pid of the process that holds the container's VMs. */
  pid: number;
  /** Its start time (field 22 of /proc/PID/stat): tells a reused pid apart. */
  startTime: string;
  /** The bundle's absolute path. */
  bundle: string;
  /** The root file system's absolute path. */
  rootfs: string;
  /** When it was created (ISO 8601). */
  created: string;
  /** The config's annotations. */
  annotations: { [k: string]: string };
}

/** The state the runtime spec's `state` operation prints. */
export interface OciState {
  /** The runtime spec version. */
  ociVersion: string;
  /** The container's id. */
  id: string;
  /** Its status. */
  status: Status;
  /** Its host pid (0 once stopped, as runc shows it). */
  pid: number;
  /** The bundle's absolute path. */
  bundle: string;
  /** The root file system's absolute path. */
  rootfs: string;
  /** When it was created. */
  created: string;
  /** Who owns it (runc's field; empty). */
  owner: string;
  /** The config's annotations. */
  annotations: { [k: string]: string };
}

/** The runtime spec version hermitux implements. */
export const OCI_VERSION = "1.0.2";

/** An error with runc's wording and exit status 1 (go-runc and the shims match on the words). */
export class RuntimeError extends Error {}

/** An id runc accepts: letters, digits, `_ + - .`, not `.` or `..`. */
export function checkId(id: string | undefined): string {
  if (!id) throw new RuntimeError("container id cannot be empty");
  if (!/^[\w+\-.]+$/.test(id) || id === "." || id === "..") {
    throw new RuntimeError(`invalid container id format: ${id}`);
  }
  return id;
}

/** The directory of container `id` under the runtime root. */
export function containerDir(root: string, id: string): string {
  return `${root}/${checkId(id)}`;
}

/** The socket a created container's holder waits on until `start`. */
export function startSocket(root: string, id: string): string {
  return `${containerDir(root, id)}/start.sock`;
}

/** Reads container `id`'s record; "container does not exist" when there is none. */
export function load(root: string, id: string): ContainerRecord {
  try {
    return JSON.parse(Deno.readTextFileSync(`${containerDir(root, id)}/state.json`));
  } catch (e) {
    if (e instanceof RuntimeError) throw e;
    throw new RuntimeError("container does not exist");
  }
}

/** Writes the record (atomically: a rename). */
export function save(root: string, r: ContainerRecord): void {
  const dir = containerDir(root, r.id), tmp = `${dir}/state.json.tmp`;
  Deno.writeTextFileSync(tmp, JSON.stringify(r));
  Deno.renameSync(tmp, `${dir}/state.json`);
}

/** Fields of /proc/PID/stat after the command: [state, …]; undefined when there is no such process. */
function procStat(pid: number): string[] | undefined {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return s.slice(s.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** The start time of host process `pid` (field 22 of its stat), "" if there is none. */
export function startTimeOf(pid: number): string {
  return procStat(pid)?.[19] ?? "";
}

/** Whether the holder recorded in `r` is alive (not gone, not a zombie, not another process). */
export function alive(r: ContainerRecord): boolean {
  const f = procStat(r.pid);
  return f !== undefined && f[0] !== "Z" && f[0] !== "X" && f[19] === r.startTime;
}

/** The container's status now. */
export function statusOf(root: string, r: ContainerRecord): Status {
  if (!alive(r)) return "stopped";
  try {
    Deno.lstatSync(startSocket(root, r.id));
    return "created";
  } catch {
    return "running";
  }
}

/** The OCI state of the container recorded in `r`. */
export function ociState(root: string, r: ContainerRecord): OciState {
  const status = statusOf(root, r);
  return {
    ociVersion: OCI_VERSION,
    id: r.id,
    status,
    pid: status === "stopped" ? 0 : r.pid,
    bundle: r.bundle,
    rootfs: r.rootfs,
    created: r.created,
    owner: "",
    annotations: r.annotations,
  };
}
