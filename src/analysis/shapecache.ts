/**
 * The stub rewriter's answers ({@linkcode siteShape}) kept on disk across
 * runs, per ELF file by its GNU build id and size: the first `syscall` of
 * each site in libc and ld.so otherwise costs a look at the file's unwind
 * tables or symbols in every run (python3 -c pass: 27 asks, ~8 ms, most of
 * it reading libc's symbol table). An entry is checked before use: the
 * function is decoded again from its remembered start up to the site and
 * must end its instruction there with the remembered length (the rewriter
 * then checks the bytes and the padding against the file, as always); a
 * wrong one is computed anew. The cache is trusted as the user's own files
 * are (a padding slot is taken as the file's own analysis said). A file
 * with no build id is not cached. `HERMITUX_CACHE_DIR` moves the cache (`off` turns it off); the
 * default is `$XDG_CACHE_HOME/hermitux` or `~/.cache/hermitux`.
 * @module
 */
import { type ElfFile, PT_NOTE } from "../loader/elf.ts";
import { shapeHolds, type SiteShape, siteShape } from "./boundary.ts";
import { cacheDir, writeCacheFile } from "../cachedir.ts";

/** Bumped when what siteShape answers changes: older files are ignored. */
const VERSION = 1;
const NT_GNU_BUILD_ID = 3;

/** The hex GNU build id of `elf` (its bytes `bytes`), or undefined. */
export function buildId(bytes: Uint8Array, elf: ElfFile): string | undefined {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const s of elf.segments) {
    if (s.type !== PT_NOTE) continue;
    let at = s.offset;
    const end = Math.min(s.offset + s.filesz, bytes.length);
    while (at + 12 <= end) {
      const namesz = v.getUint32(at, true), descsz = v.getUint32(at + 4, true);
      const type = v.getUint32(at + 8, true);
      const name = at + 12, desc = name + ((namesz + 3) & ~3);
      const next = desc + ((descsz + 3) & ~3);
      if (next > end || descsz > 64) break;
      if (
        type === NT_GNU_BUILD_ID && namesz === 4 && bytes[name] === 0x47 &&
        bytes[name + 1] === 0x4e &&
        bytes[name + 2] === 0x55 && descsz >= 8
      ) {
        return [...bytes.subarray(desc, desc + descsz)].map((b) => b.toString(16).padStart(2, "0"))
          .join("");
      }
      at = next;
    }
  }
  return undefined;
}

interface FileShapes {
  path?: string;
  shapes: Map<number, SiteShape | null>;
  /** Sites whose remembered shape was checked against the bytes in this process. */
  checked: Set<number>;
  dirty: boolean;
}

/** Answers for each file seen in this host process, by build id and size. */
const files = new Map<string, FileShapes>();
/** Build ids by parsed file (each ELF is parsed once per run, or once per boot). */
const ids = new WeakMap<ElfFile, string | null>();

function isShape(s: unknown, size: number): s is SiteShape {
  const o = s as SiteShape;
  const ok = (n: unknown) =>
    Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) < 2 ** 48;
  return typeof o === "object" && o !== null && typeof o.fn === "object" && o.fn !== null &&
    ok(o.fn.start) && ok(o.fn.end) && o.fn.start < o.fn.end && o.fn.end - o.fn.start <= size &&
    Number.isInteger(o.len) && o.len >= 2 && o.len <= 5 && Array.isArray(o.pads) &&
    o.pads.length <= 64 && o.pads.every(ok);
}

function load(key: string): FileShapes {
  let f = files.get(key);
  if (f) return f;
  f = { shapes: new Map(), checked: new Set(), dirty: false };
  const dir = cacheDir();
  if (dir) {
    f.path = `${dir}/sites-v${VERSION}/${key}.json`;
    try {
      const data = JSON.parse(Deno.readTextFileSync(f.path));
      const size = Number(key.slice(key.lastIndexOf("-") + 1));
      for (const [site, shape] of Object.entries(data as Record<string, unknown>)) {
        const at = Number(site);
        if (!Number.isSafeInteger(at) || at < 0) continue;
        if (shape === null) f.shapes.set(at, null);
        else if (isShape(shape, size)) f.shapes.set(at, shape);
      }
    } catch { /* none yet, or unreadable: start empty */ }
  }
  files.set(key, f);
  return f;
}

/**
 * {@linkcode siteShape} of link-time `site` in `elf` (bytes `bytes`),
 * from the cache when it has been asked before (in this process or an
 * earlier run), else computed and remembered.
 */
export function cachedSiteShape(
  bytes: Uint8Array,
  elf: ElfFile,
  site: number,
): SiteShape | undefined {
  let id = ids.get(elf);
  if (id === undefined) ids.set(elf, id = buildId(bytes, elf) ?? null);
  if (id === null) return siteShape(bytes, elf, site);
  const f = load(`${id}-${bytes.length}`);
  const known = f.shapes.get(site);
  // A remembered shape is decoded again from its function's start (cheap:
  // finding the function is what costs): a damaged entry is computed anew.
  if (known === null || (known && (f.checked.has(site) || shapeHolds(bytes, elf, site, known)))) {
    f.checked.add(site);
    return known ?? undefined;
  }
  const shape = siteShape(bytes, elf, site);
  f.shapes.set(site, shape ?? null);
  f.checked.add(site);
  f.dirty = true;
  return shape;
}

/** Writes what was learned since the last save (a temporary file, then a rename). */
export function saveSiteShapes(): void {
  for (const f of files.values()) {
    if (!f.dirty || !f.path) continue;
    f.dirty = false;
    try {
      writeCacheFile(f.path, JSON.stringify(Object.fromEntries(f.shapes)));
    } catch {
      f.path = undefined; // a read-only home: no cache, and no retry every run
    }
  }
}
