/**
 * The CLI's default /etc: what programs read there and holds no secret,
 * instead of the host's whole /etc (which has `shadow`, `gshadow`, SSH host
 * keys, credentials in `pip.conf`, `npmrc`, `wgetrc`, `environment`…).
 * Files are copied into a fresh in-memory directory when the run starts
 * (removed with it); a few directories are shown read-only through mounts
 * of their own. The set was found by tracing what the tests' programs
 * (C in three builds, python3, perl, lua, node, git, make, bash, busybox,
 * sqlite3, gawk, jq…) look up under /etc, and what libc's name services,
 * TLS libraries and Debian's interpreters read. `--mount /etc:/etc:ro`
 * gives the host's own /etc.
 * @module
 */
import type { MemoryFile, MountSpec } from "../vfs/mounts.ts";
import { MEMORY } from "../vfs/mounts.ts";

/** Files of the host's /etc copied into the default /etc (those that exist). */
export const ETC_FILES: readonly string[] = [
  // the dynamic loaders
  "ld.so.cache",
  "ld.so.conf",
  "ld.so.preload",
  "ld-musl-x86_64.path",
  // libc's name services (no passwords: passwd and group keep "x" in theirs)
  "nsswitch.conf",
  "passwd",
  "group",
  "hosts",
  "host.conf",
  "gai.conf",
  "services",
  "protocols",
  "networks",
  "rpc",
  "ethertypes",
  "netconfig",
  // time, locale, identity of the system
  "localtime",
  "timezone",
  "locale.alias",
  "hostname",
  "os-release",
  "debian_version",
  "lsb-release",
  // shells and tools
  "shells",
  "profile",
  "bash.bashrc",
  "inputrc",
  "mime.types",
  "magic",
  "magic.mime",
  "xattr.conf",
  // TLS
  "ssl/openssl.cnf",
];

/** Directories of the host's /etc shown read-only at the same place (those that exist). */
export const ETC_DIRS: readonly string[] = [
  "alternatives", // /usr/bin/awk → /etc/alternatives/awk → …
  "ld.so.conf.d",
  "ld-musl-x86_64.d",
  "ssl/certs", // CA certificates (not ssl/private)
  "pki/tls/certs",
  "ca-certificates",
  "perl", // Debian's perl looks here first for modules
  "terminfo",
  "profile.d",
];

/** Files given only with the network grant: the guest's DNS resolver. */
export const ETC_NET_FILES: readonly string[] = ["resolv.conf"];

/** Where a symbolic link in /etc may point and stay a link: the default read-only mounts. */
const LINKABLE = ["/usr/", "/lib/", "/lib64/", "/bin/"];

/** The host's copy of /etc/`name`, as a MemoryFile, if it exists and can be read. */
function copyOf(name: string, root: string): MemoryFile | undefined {
  const host = `${root}/${name}`;
  try {
    const st = Deno.lstatSync(host);
    if (st.isSymlink) {
      // A link into what the guest sees (localtime → /usr/share/zoneinfo/…) stays one;
      // one elsewhere (resolv.conf → /run/…) becomes a copy of what it names.
      const real = Deno.realPathSync(host);
      if (LINKABLE.some((d) => real.startsWith(d))) {
        return { path: name, link: Deno.readLinkSync(host) };
      }
    }
    const real = Deno.statSync(host);
    if (!real.isFile) return undefined;
    let data: Uint8Array = Deno.readFileSync(host);
    if (name === "passwd" || name === "group") data = withoutPasswords(data);
    return { path: name, data, mode: (real.mode ?? 0o644) & 0o7777 };
  } catch {
    return undefined;
  }
}

/** passwd(5)/group(5) text with every password field "x" (a hash there would be a secret). */
function withoutPasswords(data: Uint8Array): Uint8Array {
  const text = new TextDecoder().decode(data);
  const out = text.split("\n").map((line) => {
    const f = line.split(":");
    if (f.length < 3 || line.startsWith("#")) return line;
    if (f[1] !== "" && f[1] !== "x" && f[1] !== "*" && f[1] !== "!") f[1] = "x";
    return f.join(":");
  });
  return new TextEncoder().encode(out.join("\n"));
}

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/**
 * The default /etc: an in-memory directory with the files of
 * {@linkcode ETC_FILES} (and `resolv.conf` when `net`), `hosts` extended
 * with the names the network grant resolved (`hosts`: address, name), and
 * read-only mounts of {@linkcode ETC_DIRS} and Debian's `python3*`.
 */
export function defaultEtc(
  opts: { net: boolean; hosts?: readonly [string, string][] },
  root = "/etc",
): MountSpec[] {
  // Read when the guest first looks in /etc (a static hello never does).
  const files = (): MemoryFile[] => {
    const out: MemoryFile[] = [];
    for (const name of [...ETC_FILES, ...(opts.net ? ETC_NET_FILES : [])]) {
      const f = copyOf(name, root);
      if (!f) continue;
      if (name === "hosts" && f.data && opts.hosts?.length) {
        const more = opts.hosts.map(([addr, host]) => `${addr}\t${host}\n`).join("");
        const text = new TextDecoder().decode(f.data);
        f.data = new TextEncoder().encode(
          `${text}${text.endsWith("\n") || !text ? "" : "\n"}# granted by --allow-net\n${more}`,
        );
      }
      out.push(f);
    }
    // Each directory mounted inside is listed in its parent, as on the host.
    for (const d of dirs) out.push({ path: d, mode: 0o755 });
    return out;
  };
  const dirs = ETC_DIRS.filter((d) => isDir(`${root}/${d}`));
  try {
    for (const e of Deno.readDirSync(root)) {
      if (/^python3(\.\d+)?$/.test(e.name) && isDir(`${root}/${e.name}`)) dirs.push(e.name);
    }
  } catch { /* no /etc */ }
  return [
    { host: MEMORY, guest: "/etc", readOnly: true, files },
    ...dirs.map((d) => ({ host: `${root}/${d}`, guest: `/etc/${d}`, readOnly: true })),
  ];
}
