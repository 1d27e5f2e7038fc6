// hermitux under Node (the npm build: Deno shim, FFI on koffi) against
// Deno, same machine: the in-process `boot()` → exit of a static hello
// (median of NODE_BENCH_BOOTS boots after 20 untimed, in one process per
// runtime) and the whole CLI process (`hermitux run` of the hello and of
// `python3 -c pass`, medians of NODE_BENCH_CLI_RUNS runs, the runtimes
// alternating).
//
//   ./tools/deno task npm && ./tools/deno run -A bench/node.ts
import { fixture } from "../tests/fixtures.ts";
import { median } from "./common.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const BOOTS = Number(Deno.env.get("NODE_BENCH_BOOTS") ?? 200);
const CLI_RUNS = Number(Deno.env.get("NODE_BENCH_CLI_RUNS") ?? 15);
const NODE_CLI = `${ROOT}npm/dist/npm/bin/hermitux.js`;
try {
  Deno.statSync(NODE_CLI);
} catch {
  console.error("bench/node.ts: build the npm package first: ./tools/deno task npm");
  Deno.exit(1);
}

const hello = await fixture("hello", "musl-static");
const node = new TextDecoder().decode(
  (await new Deno.Command("sh", { args: ["-c", "command -v node"] }).output()).stdout,
).trim();

// One script for both runtimes: it boots the hello BOOTS times and prints the times.
const script = await Deno.makeTempFile({ suffix: ".mjs" });
await Deno.writeTextFile(
  script,
  `const [lib, hello, n] = typeof Deno === "object" && !globalThis.process?.versions?.node
  ? Deno.args : process.argv.slice(2);
const { boot } = await import(lib);
const o = { path: hello, stdout: "null", stderr: "null" };
for (let i = 0; i < 20; i++) await boot(o);
const ms = [];
for (let i = 0; i < Number(n); i++) {
  const t = performance.now();
  await boot(o);
  ms.push(performance.now() - t);
}
console.log(JSON.stringify(ms));
`,
);

async function inProcess(cmd: string, args: string[]): Promise<number> {
  const r = await new Deno.Command(cmd, { args, stderr: "inherit" }).output();
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")} failed`);
  return median(JSON.parse(new TextDecoder().decode(r.stdout)));
}

async function wall(cmd: string, args: string[]): Promise<number> {
  const t = performance.now();
  const r = await new Deno.Command(cmd, { args, stdout: "null" }).output();
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")} failed`);
  return performance.now() - t;
}

const deno = Deno.execPath();
const bootDeno = await inProcess(deno, ["run", "-A", script, `${ROOT}mod.ts`, hello, `${BOOTS}`]);
const bootNode = await inProcess(node, [
  script,
  `${ROOT}npm/dist/npm/node.js`,
  hello,
  `${BOOTS}`,
]);
const PROGRAMS = [["static hello", hello], ["python3 -c pass", "/usr/bin/python3", "-c", "pass"]];
const cli = PROGRAMS.map(() => ({ deno: [] as number[], node: [] as number[] }));
for (let i = 0; i <= CLI_RUNS; i++) {
  for (const [k, [, ...prog]] of PROGRAMS.entries()) {
    const d = await wall(deno, ["run", "-A", "--quiet", `${ROOT}cli.ts`, "run", ...prog]);
    const n = await wall(node, [NODE_CLI, "run", ...prog]);
    if (i > 0) cli[k].deno.push(d), cli[k].node.push(n); // the first round warms the page cache
  }
}
await Deno.remove(script);
const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
console.log(`median ms (load ${load}; node ${node})`);
console.log(`| measure | Deno | Node |`);
console.log(`| --- | ---: | ---: |`);
console.log(
  `| in-process boot() → exit (${BOOTS}) | ${bootDeno.toFixed(2)} | ${bootNode.toFixed(2)} |`,
);
for (const [k, [name]] of PROGRAMS.entries()) {
  const [d, n] = [median(cli[k].deno), median(cli[k].node)];
  console.log(`| whole CLI process, ${name} (${CLI_RUNS}) | ${d.toFixed(1)} | ${n.toFixed(1)} |`);
}
