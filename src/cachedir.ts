/**
 * Where hermitux keeps what it learns between runs (the stub rewriter's
 * answers, the CLI's bundled code, the host probe's measurement): `HERMITUX_CACHE_DIR` when set (`off`
 * turns every cache off), else `$XDG_CACHE_HOME/hermitux` or
 * `~/.cache/hermitux`. Undefined when off, with no home, or without
 * `--allow-env`.
 * @module
 */

/** The cache's directory, or undefined when there is none. */
export function cacheDir(): string | undefined {
  try {
    const set = Deno.env.get("HERMITUX_CACHE_DIR");
    if (set === "off" || set === "") return undefined;
    if (set) return set;
    const xdg = Deno.env.get("XDG_CACHE_HOME"), home = Deno.env.get("HOME");
    return xdg ? `${xdg}/hermitux` : home ? `${home}/.cache/hermitux` : undefined;
  } catch {
    return undefined; // no --allow-env: no cache
  }
}

/** A short FNV-1a hash of `s`, in hex: a cache file's or folder's name for a key. */
export function cacheHash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}

/**
 * Writes `text` to the cache file `path` (its folder made if need be)
 * through a temporary file and a rename, so that processes writing at once
 * never leave, nor read, half a file: the last one wins. Throws where it
 * cannot write (a read-only home), leaving no temporary file behind.
 */
export function writeCacheFile(path: string, text: string): void {
  const tmp = `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    Deno.writeTextFileSync(tmp, text);
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* never written */ }
    throw e;
  }
}
