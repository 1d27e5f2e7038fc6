// bench:compare's network row: redis-server under a runner on a free
// loopback port, `redis-benchmark -t get` against it from the host (always
// native), then the server stopped, whatever happened.
import { type Runner, startOn } from "./peers.ts";

const REDIS = "/usr/bin/redis-server";

/** A loopback TCP port nothing listens on now (the kernel's choice). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Answers whether a redis server answers PING on `port`. */
async function pong(port: number): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buf = new Uint8Array(16);
    const n = await conn.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0)).startsWith("+PONG");
  } catch {
    return false;
  } finally {
    conn?.close();
  }
}

/** Is redis-server installed (bench/setup.sh installs it with redis-benchmark)? */
export function redisMissing(): string | undefined {
  for (const p of [REDIS, "/usr/bin/redis-benchmark"]) {
    try {
      Deno.statSync(p);
    } catch {
      return `${p} is not installed (bench/setup.sh installs it)`;
    }
  }
  return undefined;
}

/**
 * Starts redis-server with runner `r` (no persistence, loopback only; the
 * hermitux columns get `--allow-net=127.0.0.1:PORT` and nothing else),
 * waits until it answers, runs `redis-benchmark -t get -n REQUESTS`, stops
 * the server and returns the GET requests per second.
 */
export async function redisGet(r: Runner, requests: number): Promise<number> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "hermitux-bench-redis-" });
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  const server = await startOn(r, REDIS, args, {
    cwd: dir,
    hostNet: true,
    flags: [`--allow-net=127.0.0.1:${port}`],
    timeout: 600,
  });
  let log = "";
  try {
    const until = Date.now() + 60_000;
    while (!await pong(port)) {
      if (server.ended) throw new Error("redis-server ended before it answered");
      if (Date.now() > until) throw new Error("redis-server did not answer PING within 60 s");
      await new Promise((ok) => setTimeout(ok, 50));
    }
    const out = await new Deno.Command("redis-benchmark", {
      args: ["-h", "127.0.0.1", "-p", String(port), "-t", "get", "-n", String(requests), "--csv"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(600_000),
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    const rps = Number(/"GET","([\d.]+)"/.exec(text)?.[1]);
    if (!out.success || !Number.isFinite(rps)) {
      const err = new TextDecoder().decode(out.stderr).trim();
      throw new Error(`redis-benchmark: exit ${out.code}: ${err || text.trim()}`.slice(0, 300));
    }
    return rps;
  } catch (e) {
    log = await server.stop();
    const tail = log.trim().split("\n").slice(-2).join(" ");
    throw new Error(`${r}: ${(e as Error).message}${tail ? `; server: ${tail}` : ""}`);
  } finally {
    if (!log) await server.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
