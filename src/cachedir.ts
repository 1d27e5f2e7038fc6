/**
 * Where hermitux keeps what it learns between runs (the stub rewriter's
 * answers, the CLI's bundled code): `HERMITUX_CACHE_DIR` when set (`off`
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
