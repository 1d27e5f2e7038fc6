/**
 * The network grant (`--allow-net`, `BootOptions.allowNet`): which IP
 * destinations a guest may reach and which local addresses it may bind,
 * and which host Unix sockets it may connect to. Deny unless granted, as
 * Deno does: with no grant every `connect`, `sendto`, `sendmsg`, `bind`
 * and `listen` on an IP socket is `EACCES`, and a refusal is named once
 * on stderr. Names in a grant are resolved when the run starts; loopback
 * is not special. The guest's own DNS lookups are UDP or TCP to its
 * resolver, so they pass the same check.
 * @module
 */
import { E, SyscallError } from "../syscalls/errno.ts";
import { normalize } from "../vfs/path.ts";

/** What `allowNet` may be: everything, nothing, or a list of `HOST[:PORT]` and `unix:PATH`. */
export type NetGrant = boolean | readonly string[];

/** A grant that cannot be used (bad syntax, a name that does not resolve). */
export class GrantError extends Error {
  /**
   * Makes the error.
   * @param message what is wrong, starting with "hermitux: ".
   */
  constructor(message: string) {
    super(message);
    this.name = "GrantError";
  }
}

const AF_INET = 2, AF_INET6 = 10;

/** An IP socket address as the policy sees it. */
export interface IpAddress {
  /** Canonical text: dotted IPv4 (also for IPv4-mapped IPv6), RFC 5952 IPv6. */
  host: string;
  port: number;
  /** Whether `host` is IPv6 (for `[host]:port`). */
  v6: boolean;
}

/** One `HOST[:PORT]` of a grant, with HOST canonical (a name is resolved to several). */
interface Rule {
  host: string;
  port?: number;
}

/** `host:port`, with brackets around IPv6, as in messages and grants. */
export function formatAddress(a: IpAddress): string {
  return a.v6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** The 16 bytes of IPv6 text (RFC 4291 forms, with a trailing dotted quad), or undefined. */
export function parseIpv6(text: string): Uint8Array | undefined {
  let s = text;
  if (s.includes(".")) {
    // A trailing dotted quad stands for the last two words.
    const colon = s.lastIndexOf(":");
    const v4 = colon < 0 ? undefined : parseIpv4(s.slice(colon + 1));
    if (!v4) return undefined;
    const hex = (a: number, b: number) => ((a << 8) | b).toString(16);
    s = `${s.slice(0, colon + 1)}${hex(v4[0], v4[1])}:${hex(v4[2], v4[3])}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string) => h === "" ? [] : h.split(":");
  const head = groups(halves[0]), rest = halves.length === 2 ? groups(halves[1]) : [];
  if ([...head, ...rest].some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  const total = head.length + rest.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return undefined;
  const words = [...head, ...Array(8 - total).fill("0"), ...rest].map((g) => parseInt(g, 16));
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  return out;
}

/** The 4 bytes of dotted-quad text, or undefined. */
export function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    return undefined;
  }
  return new Uint8Array(parts.map(Number));
}

/** Canonical text of 16 IPv6 bytes: dotted IPv4 for a mapped address, else RFC 5952. */
export function ipv6Text(b: Uint8Array): { host: string; v6: boolean } {
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (mapped) return { host: [...b.subarray(12, 16)].join("."), v6: false };
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((b[i] << 8) | b[i + 1]);
  // The longest run of two or more zero words becomes "::" (the first of equal runs).
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(":");
  const host = best < 0
    ? hex(words)
    : `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
  return { host, v6: true };
}

/** Canonical text of an IP literal (v4 or v6), or undefined for a name. */
export function canonicalIp(text: string): string | undefined {
  const v4 = parseIpv4(text);
  if (v4) return [...v4].join(".");
  const v6 = text.includes(":") ? parseIpv6(text) : undefined;
  return v6 ? ipv6Text(v6).host : undefined;
}

/**
 * The IP address in a guest sockaddr, undefined for another family;
 * EINVAL when it is too short to hold one (Linux's own answer).
 */
export function ipOf(addr: Uint8Array): IpAddress | undefined {
  if (addr.length < 2) return undefined;
  const family = addr[0] | (addr[1] << 8);
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  const port = (addr[2] << 8) | addr[3];
  if (family === AF_INET) {
    if (addr.length < 16) throw new SyscallError(E.EINVAL);
    return { host: [...addr.subarray(4, 8)].join("."), port, v6: false };
  }
  if (addr.length < 24) throw new SyscallError(E.EINVAL);
  return { ...ipv6Text(addr.subarray(8, 24)), port };
}

/** Splits `HOST[:PORT]` (HOST may be `[v6]` or bare v6 without a port). */
function splitHostPort(entry: string): { host: string; port?: number } {
  let host = entry, port: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracket) [host, port] = [bracket[1], bracket[2]];
  else if ((entry.match(/:/g) ?? []).length === 1) [host, port] = entry.split(":");
  if (!host) throw new GrantError(`hermitux: bad --allow-net entry '${entry}' (use HOST[:PORT])`);
  if (port === undefined) return { host };
  const n = Number(port);
  if (!/^\d+$/.test(port) || n > 65535) {
    throw new GrantError(`hermitux: bad port in --allow-net entry '${entry}'`);
  }
  return { host, port: n };
}

/**
 * A grant list with every name resolved (now, once): `entries` holds only
 * IP literals (`"93.184.215.14:443"`, `"[::1]"`), `unix:` paths and `"*"`;
 * `hosts` the address each name gave (for the guest's /etc/hosts, so that
 * it finds them with no DNS). GrantError for bad syntax or a name that
 * does not resolve.
 */
export async function resolveNetGrant(
  grant: readonly string[],
): Promise<{ entries: string[]; hosts: [string, string][] }> {
  const entries: string[] = [], hosts: [string, string][] = [];
  const withPort = (h: string, v6: boolean, port?: number) => {
    const host = v6 ? `[${h}]` : h;
    return port === undefined ? host : `${host}:${port}`;
  };
  for (const raw of grant) {
    const entry = raw.trim();
    if (entry === "") continue;
    if (entry.startsWith("unix:")) {
      if (!entry.startsWith("unix:/")) {
        throw new GrantError(
          `hermitux: bad --allow-net entry '${entry}' (use unix:/ABSOLUTE/PATH)`,
        );
      }
      entries.push(entry);
      continue;
    }
    if (entry === "*") {
      entries.push(entry);
      continue;
    }
    const { host, port } = splitHostPort(entry);
    const literal = canonicalIp(host);
    if (literal !== undefined) {
      entries.push(withPort(literal, literal.includes(":"), port));
      continue;
    }
    let found: { address: string }[];
    try {
      // Loaded here: node:dns brings Deno's Node layer, ~10 ms of every start.
      const { lookup } = await import("node:dns/promises");
      found = await lookup(host, { all: true, verbatim: true });
    } catch {
      throw new GrantError(`hermitux: cannot resolve '${host}' in --allow-net`);
    }
    for (const { address } of found) {
      const c = canonicalIp(address);
      if (c === undefined) continue;
      entries.push(withPort(c, c.includes(":"), port));
      if (!hosts.some(([a, h]) => a === c && h === host)) hosts.push([c, host]);
    }
  }
  return { entries, hosts };
}

/** The network grant of one run (shared by all its processes). */
export class NetPolicy {
  /** Every IP destination and local address is allowed. */
  readonly all: boolean;
  #rules: Rule[];
  #unix: string[];
  /** Unix sockets the guest bound itself (host `dev:ino`): it may connect to them. */
  #bound = new Set<string>();
  #named = new Set<string>();
  #report: (message: string) => void;

  private constructor(
    all: boolean,
    rules: Rule[],
    unix: string[],
    report: (message: string) => void,
  ) {
    this.all = all;
    this.#rules = rules;
    this.#unix = unix;
    this.#report = report;
  }

  /** Nothing granted. */
  static deny(report: (message: string) => void = () => {}): NetPolicy {
    return new NetPolicy(false, [], [], report);
  }

  /**
   * The policy for `grant`: `true` everything (IP; host Unix sockets still
   * need `unix:PATH`), a list those entries, with every name resolved now
   * (all its addresses); `report` names each refusal once.
   */
  static async create(
    grant: NetGrant | undefined,
    report: (message: string) => void,
  ): Promise<NetPolicy> {
    if (grant === undefined || grant === false) return NetPolicy.deny(report);
    if (grant === true) return new NetPolicy(true, [], [], report);
    const rules: Rule[] = [], unix: string[] = [];
    let all = false;
    for (const entry of (await resolveNetGrant(grant)).entries) {
      if (entry.startsWith("unix:")) unix.push(normalize(entry.slice(5)));
      else if (entry === "*") all = true;
      else {
        const { host, port } = splitHostPort(entry);
        rules.push({ host: canonicalIp(host)!, port });
      }
    }
    return new NetPolicy(all, rules, unix, report);
  }

  /** Whether IP address `a` may be reached (or bound). */
  allows(a: IpAddress): boolean {
    if (this.all) return true;
    return this.#rules.some((r) =>
      r.host === a.host && (r.port === undefined || r.port === a.port)
    );
  }

  /** EACCES (and the refusal named once) unless `a` is granted. */
  checkIp(a: IpAddress): void {
    if (this.allows(a)) return;
    const where = formatAddress(a);
    this.#once(where, `hermitux: network access to ${where} denied (use --allow-net)`);
    throw new SyscallError(E.EACCES);
  }

  /** EACCES for what only the whole grant allows (raw sockets), named once. */
  checkAll(what: string): void {
    if (this.all) return;
    this.#once(what, `hermitux: ${what} denied (use --allow-net)`);
    throw new SyscallError(E.EACCES);
  }

  /**
   * A connect (or send) to the host Unix socket at guest path `path`,
   * whose host file is `key` (`dev:ino`): allowed when the guest bound it
   * or a `unix:` entry names it or a directory above it.
   */
  checkUnix(path: string, key: string): void {
    if (this.#bound.has(key)) return;
    if (this.#unix.some((u) => u === "/" || path === u || path.startsWith(u + "/"))) return;
    this.#once(
      `unix:${path}`,
      `hermitux: connection to Unix socket ${path} denied (use --allow-net=unix:${path})`,
    );
    throw new SyscallError(E.EACCES);
  }

  /** The guest bound the Unix socket whose host file is `key`. */
  noteBound(key: string): void {
    this.#bound.add(key);
  }

  #once(key: string, message: string): void {
    if (this.#named.has(key)) return;
    this.#named.add(key);
    this.#report(message);
  }
}
