/**
 * An OCI bundle's `config.json`: the parts hermitux reads, read and checked
 * (src/oci/spec.ts maps them onto BootOptions). Light: the runtime's
 * commands other than the holder load nothing of the VM.
 * @module
 */

/** The parts of an OCI `config.json` hermitux reads (others are ignored). */
export interface OciSpec {
  /** The runtime spec's version the bundle was written for. */
  ociVersion?: string;
  /** The container's first process. */
  process?: {
    terminal?: boolean;
    user?: { uid?: number; gid?: number; additionalGids?: number[] };
    args?: string[];
    env?: string[];
    cwd?: string;
    rlimits?: { type: string; hard: number; soft: number }[];
    consoleSize?: { height: number; width: number };
  };
  /** The root file system, relative to the bundle unless absolute. */
  root?: { path: string; readonly?: boolean };
  /** The guest's host name (uname's nodename). */
  hostname?: string;
  /** Mounts, in order. */
  mounts?: { destination: string; type?: string; source?: string; options?: string[] }[];
  /** Free-form annotations: `dev.hermitux.*` set hermitux's grants. */
  annotations?: Record<string, string>;
}

/** A configuration hermitux cannot run, with a message for the user. */
export class SpecError extends Error {}

/** Annotation: the network grant, as `--allow-net` takes it (`"true"`: every address). */
export const ALLOW_NET = "dev.hermitux.allow-net";
/** Annotation: guest RAM per process, e.g. `"512M"`. */
export const MEMORY_SIZE = "dev.hermitux.memory";

/** Reads and checks `BUNDLE/config.json`. */
export function readSpec(bundle: string): OciSpec {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${bundle}/config.json`);
  } catch (e) {
    throw new SpecError(`cannot read ${bundle}/config.json: ${(e as Error).message}`);
  }
  let spec: OciSpec;
  try {
    spec = JSON.parse(text);
  } catch (e) {
    throw new SpecError(`${bundle}/config.json: ${(e as Error).message}`);
  }
  if (typeof spec !== "object" || spec === null) {
    throw new SpecError(`${bundle}/config.json: not an object`);
  }
  if (!spec.root?.path) throw new SpecError("config.json: root.path is missing");
  const args = spec.process?.args;
  if (!Array.isArray(args) || args.length === 0 || typeof args[0] !== "string") {
    throw new SpecError("config.json: process.args must name a program");
  }
  return spec;
}

/** A path of the bundle: absolute as it is, else relative to the bundle. */
export function inBundle(bundle: string, path: string): string {
  return path.startsWith("/") ? path : `${bundle}/${path}`;
}
