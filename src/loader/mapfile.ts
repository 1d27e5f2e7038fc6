/**
 * Program files mapped rather than read: a 7 MB executable (python3) costs
 * a few µs to map and its pages come from the page cache as the loader
 * copies the segments, where reading it costs 3–12 ms. Mappings are private
 * and writable (a write would stay in this process), cached by the file's
 * identity and kept for the process's life: a view must never outlive its
 * mapping, and ELF symbol tables are read from them lazily.
 * @module
 */
import { addressOf, errno, libc } from "../kvm/libc.ts";
import { hostFstat } from "../syscalls/host.ts";

const O_RDONLY = 0, O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000, PROT_RW = 3, MAP_PRIVATE = 2;
const S_IFMT = 0o170000, S_IFDIR = 0o040000, S_IFREG = 0o100000;
const MAX_CACHED = 32;

const cache = new Map<string, Uint8Array>();

/** Why a file could not be mapped, with its errno. */
export class MapFileError extends Error {
  /** The errno value (ENOENT, EACCES, EISDIR…). */
  readonly errno: number;
  constructor(path: string, err: number) {
    super(`${path}: errno ${err}`);
    this.errno = err;
  }
}

/** The bytes of regular file `path`, mapped (see the module doc). */
export function mapFile(path: string): Uint8Array {
  const fd = libc().open(
    new TextEncoder().encode(path + "\0"),
    O_RDONLY | O_NONBLOCK | O_CLOEXEC, // a FIFO must not block the open
    0,
  );
  if (fd < 0) throw new MapFileError(path, errno());
  try {
    const st = hostFstat(fd);
    if (typeof st === "number") throw new MapFileError(path, -st);
    const { mode, size } = st;
    if ((mode & S_IFMT) === S_IFDIR) throw new MapFileError(path, 21); // EISDIR
    // A device or FIFO is no program (reading /dev/zero would never end): EACCES, as execve.
    if ((mode & S_IFMT) !== S_IFREG) throw new MapFileError(path, 13);
    if (size === 0) return new Uint8Array(0);
    // A changed file maps anew.
    const key = `${st.dev}:${st.ino}:${size}:${st.mtimeNs}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const p = libc().mmap(null, BigInt(size), PROT_RW, MAP_PRIVATE, fd, 0n);
    if (!p || addressOf(p) === 0xffffffffffffffffn) return Deno.readFileSync(path);
    const bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, size));
    // Past MAX_CACHED files the oldest leaves the cache; its mapping stays (views may live).
    if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
    cache.set(key, bytes);
    return bytes;
  } finally {
    libc().close(fd);
  }
}
