/**
 * Guest paths are byte strings: one JS char per byte (latin1), so names
 * that are not UTF-8 survive the trip through the host untouched.
 * @module
 */

/** A guest path read from guest memory, one char per byte. */
export function bytesToPath(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

/** The NUL-terminated bytes of a path, for a host syscall. */
export function pathToCString(path: string): Uint8Array {
  const out = new Uint8Array(path.length + 1);
  for (let i = 0; i < path.length; i++) out[i] = path.charCodeAt(i);
  return out;
}

/** Splits a path into its non-empty components. */
export function components(path: string): string[] {
  return path.split("/").filter((c) => c !== "");
}

/** Joins components into an absolute path. */
export function absolute(parts: readonly string[]): string {
  return "/" + parts.join("/");
}

/** Lexically normalises an absolute path ("." and ".." and repeated slashes). */
export function normalize(path: string): string {
  const out: string[] = [];
  for (const c of components(path)) {
    if (c === ".") continue;
    if (c === "..") out.pop();
    else out.push(c);
  }
  return absolute(out);
}
