/**
 * Builds the npm package `@hermitux/core` into npm/ (see docs/NPM.md): the
 * library and the CLI compiled by tsc to ES modules in npm/dist (the
 * checkout's layout: dist/mod.js, dist/src/…, dist/npm/node.js), with the
 * `Deno` shim for Node (npm/shim, FFI on koffi) installed by its entry
 * points, the guest kernel and vDSO beside them, and npm/package.json.
 *
 * ```sh
 * ./tools/deno run -A tools/build_npm.ts   # or: deno task npm
 * cd npm && npm pack
 * ```
 * @module
 */
import { VERSION } from "../src/version.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const NPM = `${ROOT}npm/`;

/** The package's runtime dependencies, pinned: the FFI and the disassembler. */
const DEPENDENCIES = { koffi: "2.16.3", "iced-x86": "1.21.0" };

/** Files the code reads next to its modules (`new URL(…, import.meta.url)`). */
const ASSETS = ["src/kernel/kernel.bin", "src/kernel/vdso/vdso.so", "src/kernel/kernel.map"];

function copy(from: string, to: string, edit?: (text: string) => string): void {
  Deno.mkdirSync(to.slice(0, to.lastIndexOf("/")), { recursive: true });
  if (edit) Deno.writeTextFileSync(to, edit(Deno.readTextFileSync(from)));
  else Deno.copyFileSync(from, to);
}

function* tsFiles(dir: string, rel = ""): Generator<string> {
  for (const e of Deno.readDirSync(`${dir}${rel}`)) {
    const p = `${rel}${e.name}`;
    if (e.isDirectory && !e.name.startsWith(".") && e.name !== "dist") yield* tsFiles(dir, `${p}/`);
    else if (e.name.endsWith(".ts")) yield p;
  }
}

/**
 * The `Deno` types the emitted declarations name (a pointer, a library), for
 * TypeScript users on Node: what the shim gives in their place.
 */
const DENO_TYPES =
  `/** The few \`Deno\` types hermitux's declarations name, as the Node shim has them. */
declare namespace Deno {
  /** A native pointer: koffi's pointer value under the shim. */
  type PointerObject<_T = unknown> = object;
  /** A native pointer, or null for NULL. */
  type PointerValue<T = unknown> = PointerObject<T> | null;
  /** An opened library's bound functions. */
  interface DynamicLibrary<S> {
    // deno-lint-ignore no-explicit-any
    readonly symbols: { [K in keyof S]: (...args: any[]) => any };
    close(): void;
  }
}
`;

/** `npm:NAME@VERSION` specifiers become bare `NAME`, as Node resolves them. */
function bareSpecifiers(text: string): string {
  return text.replace(/(["'])npm:((?:@[^/"']+\/)?[^@"']+)@[^"']*\1/g, "$1$2$1");
}

const tsconfig = (dist: string) => ({
  compilerOptions: {
    target: "ES2022",
    module: "ESNext",
    moduleResolution: "Bundler",
    rewriteRelativeImportExtensions: true,
    allowImportingTsExtensions: true,
    // Deno type-checks this code; here the `Deno` namespace is the shim's, at run time.
    noCheck: true,
    skipLibCheck: true,
    esModuleInterop: true,
    verbatimModuleSyntax: false,
    types: ["node"],
    typeRoots: [`${ROOT}node_modules/@types`],
    rootDir: ".",
    outDir: dist,
    declaration: true,
    removeComments: false,
    newLine: "lf",
  },
  include: ["**/*.ts"],
});

/**
 * Builds the package into `out` (default: the checkout's npm/, beside its
 * sources; a test builds elsewhere) and returns it: `npm pack` there packs it.
 */
export async function buildNpm(out: string = NPM): Promise<string> {
  if (!out.endsWith("/")) out += "/";
  const STAGE = `${out}.stage/`, DIST = `${out}dist/`;
  for (const d of [STAGE, DIST]) await Deno.remove(d, { recursive: true }).catch(() => {});
  Deno.mkdirSync(STAGE, { recursive: true });
  copy(`${ROOT}mod.ts`, `${STAGE}mod.ts`, bareSpecifiers);
  copy(`${ROOT}cli.ts`, `${STAGE}cli.ts`, bareSpecifiers);
  for (const f of tsFiles(`${ROOT}src/`)) {
    copy(`${ROOT}src/${f}`, `${STAGE}src/${f}`, bareSpecifiers);
  }
  // The Node entry points and the shim, where they are in the checkout (npm/).
  for (const f of tsFiles(NPM)) copy(`${NPM}${f}`, `${STAGE}npm/${f}`);
  Deno.writeTextFileSync(`${STAGE}tsconfig.json`, JSON.stringify(tsconfig(DIST), null, 2));
  const tsc = await new Deno.Command("node", {
    args: [`${ROOT}node_modules/typescript/bin/tsc`, "-p", `${STAGE}tsconfig.json`],
    cwd: STAGE,
  }).output();
  const said = new TextDecoder().decode(tsc.stdout) + new TextDecoder().decode(tsc.stderr);
  if (!tsc.success) throw new Error(`tsc failed:\n${said}`);
  Deno.writeTextFileSync(`${DIST}npm/deno_types.d.ts`, DENO_TYPES);
  for (const entry of ["node", "node_cli"]) {
    const d = `${DIST}npm/${entry}.d.ts`;
    Deno.writeTextFileSync(
      d,
      `/// <reference path="./deno_types.d.ts" />\n${Deno.readTextFileSync(d)}`,
    );
  }
  for (const a of ASSETS) copy(`${ROOT}${a}`, `${DIST}${a}`);
  Deno.chmodSync(`${DIST}npm/bin/hermitux.js`, 0o755);
  copy(`${ROOT}LICENSE`, `${out}LICENSE`);
  if (out !== NPM) copy(`${NPM}README.md`, `${out}README.md`);
  const pkg = {
    name: "@hermitux/core",
    version: VERSION,
    description: "Run unmodified Linux x86-64 executables in a KVM micro-VM, from Node",
    license: "MIT",
    type: "module",
    exports: {
      ".": { types: "./dist/npm/node.d.ts", default: "./dist/npm/node.js" },
      "./cli": { types: "./dist/npm/node_cli.d.ts", default: "./dist/npm/node_cli.js" },
    },
    bin: { hermitux: "dist/npm/bin/hermitux.js" },
    files: ["dist/", "LICENSE", "README.md"],
    engines: { node: ">=20" },
    os: ["linux"],
    cpu: ["x64"],
    dependencies: DEPENDENCIES,
  };
  Deno.writeTextFileSync(`${out}package.json`, JSON.stringify(pkg, null, 2) + "\n");
  Deno.removeSync(STAGE, { recursive: true });
  return out;
}

if (import.meta.main) {
  console.log(`built ${await buildNpm()}`);
}
