import assert from "node:assert/strict";
import {
  ElfError,
  type ElfFile,
  ET_DYN,
  ET_EXEC,
  parseElf,
  PF_R,
  PF_W,
  PF_X,
  PT_GNU_STACK,
  PT_INTERP,
  PT_LOAD,
  PT_TLS,
} from "../src/loader/elf.ts";

// ---------------------------------------------------------------------------
// Helpers: running tools, compiling, parsing readelf output.

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    env: { LC_ALL: "C" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${dec.decode(out.stderr)}`);
  }
  return dec.decode(out.stdout);
}

const C_SOURCE = `
#include <stdio.h>
int counter = 42;
int main(int argc, char **argv) {
  (void)argv;
  printf("hello %d\\n", counter + argc);
  return 0;
}
`;

/** Compiles C_SOURCE with `cc flags`, runs `fn` on the output, cleans up. */
async function withBinary(
  cc: string,
  flags: string[],
  fn: (path: string) => Promise<void> | void,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "hermitux_elf_test_" });
  try {
    const src = `${dir}/prog.c`;
    const bin = `${dir}/prog`;
    await Deno.writeTextFile(src, C_SOURCE);
    await run(cc, [...flags, "-O0", "-o", bin, src]);
    await fn(bin);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const READELF_PT: Record<string, number> = {
  LOAD: 1,
  DYNAMIC: 2,
  INTERP: 3,
  NOTE: 4,
  PHDR: 6,
  TLS: 7,
  GNU_EH_FRAME: 0x6474e550,
  GNU_STACK: 0x6474e551,
  GNU_RELRO: 0x6474e552,
  GNU_PROPERTY: 0x6474e553,
};

interface ReadelfHeaders {
  type: number;
  entry: number;
  segments: {
    type: number;
    offset: number;
    vaddr: number;
    filesz: number;
    memsz: number;
    flags: number;
    align: number;
  }[];
  interpreter?: string;
}

function parseReadelfHeaders(text: string): ReadelfHeaders {
  const typeMatch = text.match(/^\s*Type:\s+(\w+)/m);
  const entryMatch = text.match(/^\s*Entry point address:\s+0x([0-9a-f]+)/m);
  assert.ok(typeMatch && entryMatch, "unexpected readelf -h output");
  const type = typeMatch[1] === "EXEC" ? ET_EXEC : typeMatch[1] === "DYN" ? ET_DYN : -1;
  const phdr = new RegExp(
    String.raw`^  (\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)` +
      String.raw`\s+0x([0-9a-f]+)\s+0x([0-9a-f]+) (.{3}) 0x([0-9a-f]+)$`,
  );
  const segments: ReadelfHeaders["segments"] = [];
  let interpreter: string | undefined;
  for (const line of text.split("\n")) {
    const m = line.match(phdr);
    if (m) {
      const name = m[1];
      const segType = READELF_PT[name] ??
        (name.startsWith("0x") ? parseInt(name, 16) : NaN);
      assert.ok(!Number.isNaN(segType), `unknown readelf type ${name}`);
      const flagText = m[7];
      const flags = (flagText[0] === "R" ? PF_R : 0) |
        (flagText[1] === "W" ? PF_W : 0) | (flagText[2] === "E" ? PF_X : 0);
      segments.push({
        type: segType,
        offset: parseInt(m[2], 16),
        vaddr: parseInt(m[3], 16),
        filesz: parseInt(m[5], 16),
        memsz: parseInt(m[6], 16),
        flags,
        align: parseInt(m[8], 16),
      });
    }
    const im = line.match(/\[Requesting program interpreter: (.*)\]/);
    if (im) interpreter = im[1];
  }
  return { type, entry: parseInt(entryMatch[1], 16), segments, interpreter };
}

/** Symbols as parseElf should report them, from `readelf -sW`. */
function parseReadelfSymbols(text: string): string[] {
  const tables = new Map<string, string[]>();
  let current: string[] | undefined;
  const sym = new RegExp(
    String.raw`^\s*\d+: ([0-9a-f]+)\s+(0x[0-9a-f]+|\d+) (\w+)\s+\w+\s+\w+` +
      String.raw`(?:\s+\[[^\]]*\])?\s+(\w+) ?(.*)$`,
  );
  for (const line of text.split("\n")) {
    const header = line.match(/^Symbol table '([^']+)'/);
    if (header) {
      current = [];
      tables.set(header[1], current);
      continue;
    }
    const m = line.match(sym);
    if (!m || current === undefined) continue;
    const [, value, size, type, ndx, rawName] = m;
    if (type !== "FUNC" && type !== "OBJECT") continue;
    if (ndx === "UND" || parseInt(value, 16) === 0) continue;
    const name = rawName.replace(/@.*$/, "");
    current.push(symKey(parseInt(value, 16), Number(size), type, name));
  }
  return (tables.get(".symtab") ?? tables.get(".dynsym") ?? []).sort();
}

function symKey(value: number, size: number, type: string, name: string) {
  return `${value.toString(16)} ${size} ${type} ${name}`;
}

/** Checks `parseElf` against `readelf` for the file at `path`. */
async function compareWithReadelf(path: string): Promise<ElfFile> {
  const elf = parseElf(await Deno.readFile(path), path);
  const expected = parseReadelfHeaders(await run("readelf", ["-hlW", path]));
  assert.equal(elf.path, path);
  assert.equal(elf.type, expected.type);
  assert.equal(elf.isPie, expected.type === ET_DYN);
  assert.equal(elf.entry, expected.entry);
  assert.equal(elf.phnum, expected.segments.length);
  assert.equal(elf.phentsize, 56);
  assert.deepEqual(
    elf.segments.map(({ type, offset, vaddr, filesz, memsz, flags, align }) => ({
      type,
      offset,
      vaddr,
      filesz,
      memsz,
      flags,
      align,
    })),
    expected.segments,
  );
  assert.equal(elf.interpreter, expected.interpreter);

  const loads = expected.segments.filter((s) => s.type === PT_LOAD);
  const last = loads[loads.length - 1];
  assert.equal(elf.loadRange.start, loads[0].vaddr & ~0xfff);
  assert.equal(
    elf.loadRange.end,
    Math.ceil((last.vaddr + last.memsz) / 0x1000) * 0x1000,
  );

  const expectedSyms = parseReadelfSymbols(await run("readelf", ["-sW", path]));
  const actualSyms = elf.symbols.map((s) =>
    symKey(s.value, s.size, s.type === 2 ? "FUNC" : "OBJECT", s.name)
  ).sort();
  assert.deepEqual(actualSyms, expectedSyms);
  for (let i = 1; i < elf.symbols.length; i++) {
    assert.ok(elf.symbols[i - 1].value <= elf.symbols[i].value, "sorted");
  }
  return elf;
}

function checkMain(elf: ElfFile): void {
  const main = elf.symbols.find((s) => s.name === "main");
  assert.ok(main, "main in symbols");
  assert.equal(main.type, 2);
  assert.ok(main.size > 5);
  assert.deepEqual(elf.symbolize(main.value + 5), { name: "main", offset: 5 });
  assert.deepEqual(elf.symbolize(main.value), { name: "main", offset: 0 });
  const counter = elf.symbols.find((s) => s.name === "counter");
  assert.ok(counter, "counter in symbols");
  assert.equal(counter.type, 1);
  assert.deepEqual(elf.symbolize(counter.value + 3), {
    name: "counter",
    offset: 3,
  });
  assert.equal(elf.symbolize(0), undefined);
  assert.equal(elf.symbolize(-1), undefined);
  assert.equal(elf.symbolize(NaN), undefined);
}

/** Deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function expectElfError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ElfError, `expected ElfError, got ${err}`);
    assert.match(err.message, pattern);
    return true;
  });
}

// ---------------------------------------------------------------------------
// Hand-built ELF files.

interface Phdr {
  type: number;
  flags?: number;
  offset: bigint | number;
  vaddr: bigint | number;
  filesz: bigint | number;
  memsz: bigint | number;
  align?: bigint | number;
}

/** Builds a 64-bit ELF header + program headers, padded to `size` bytes. */
function buildElf(
  phdrs: Phdr[],
  opts: { type?: number; entry?: bigint; phentsize?: number; size?: number } = {},
): Uint8Array {
  const phentsize = opts.phentsize ?? 56;
  const size = opts.size ?? 0x2000;
  const bytes = new Uint8Array(size);
  const v = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(16, opts.type ?? ET_EXEC, true);
  v.setUint16(18, 62, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(24, opts.entry ?? 0x401000n, true);
  v.setBigUint64(32, 64n, true);
  v.setUint16(52, 64, true);
  v.setUint16(54, phentsize, true);
  v.setUint16(56, phdrs.length, true);
  phdrs.forEach((p, i) => {
    const off = 64 + i * 56;
    if (off + 56 > size) return;
    v.setUint32(off, p.type, true);
    v.setUint32(off + 4, p.flags ?? PF_R, true);
    v.setBigUint64(off + 8, BigInt(p.offset), true);
    v.setBigUint64(off + 16, BigInt(p.vaddr), true);
    v.setBigUint64(off + 24, BigInt(p.vaddr), true);
    v.setBigUint64(off + 32, BigInt(p.filesz), true);
    v.setBigUint64(off + 40, BigInt(p.memsz), true);
    v.setBigUint64(off + 48, BigInt(p.align ?? 0x1000), true);
  });
  return bytes;
}

const TEXT: Phdr = {
  type: PT_LOAD,
  flags: PF_R | PF_X,
  offset: 0,
  vaddr: 0x400000,
  filesz: 0x1000,
  memsz: 0x1000,
};
const DATA: Phdr = {
  type: PT_LOAD,
  flags: PF_R | PF_W,
  offset: 0x1000,
  vaddr: 0x401000,
  filesz: 0x800,
  memsz: 0x3000,
};

// ---------------------------------------------------------------------------
// Real binaries.

Deno.test("parseElf: /bin/ls (dynamic PIE) matches readelf", async () => {
  const elf = await compareWithReadelf("/bin/ls");
  assert.equal(elf.type, ET_DYN);
  assert.ok(elf.isPie);
  assert.equal(elf.interpreter, "/lib64/ld-linux-x86-64.so.2");
  assert.equal(elf.loadRange.start, 0);
});

Deno.test("parseElf: /sbin/ldconfig (static-pie) matches readelf", async () => {
  const file = await run("file", ["-L", "/sbin/ldconfig"]);
  const elf = await compareWithReadelf("/sbin/ldconfig");
  if (file.includes("static-pie")) {
    assert.equal(elf.type, ET_DYN);
    assert.equal(elf.interpreter, undefined);
  }
});

Deno.test("parseElf: gcc -static (ET_EXEC) matches readelf", async () => {
  await withBinary("gcc", ["-static", "-no-pie"], async (bin) => {
    const elf = await compareWithReadelf(bin);
    assert.equal(elf.type, ET_EXEC);
    assert.ok(!elf.isPie);
    assert.equal(elf.interpreter, undefined);
    assert.ok(elf.segments.some((s) => s.type === PT_TLS));
    assert.ok(elf.loadRange.start >= 0x400000);
    checkMain(elf);
  });
});

Deno.test("parseElf: gcc -static-pie matches readelf", async () => {
  await withBinary("gcc", ["-static-pie"], async (bin) => {
    const elf = await compareWithReadelf(bin);
    assert.equal(elf.type, ET_DYN);
    assert.ok(elf.isPie);
    assert.equal(elf.interpreter, undefined);
    assert.equal(elf.loadRange.start, 0);
    checkMain(elf);
  });
});

Deno.test("parseElf: gcc dynamic PIE matches readelf", async () => {
  await withBinary("gcc", ["-pie", "-fPIE"], async (bin) => {
    const elf = await compareWithReadelf(bin);
    assert.equal(elf.type, ET_DYN);
    assert.equal(elf.interpreter, "/lib64/ld-linux-x86-64.so.2");
    checkMain(elf);
  });
});

Deno.test("parseElf: musl-gcc -static matches readelf", async () => {
  await withBinary("musl-gcc", ["-static"], async (bin) => {
    const elf = await compareWithReadelf(bin);
    assert.equal(elf.interpreter, undefined);
    checkMain(elf);
  });
});

Deno.test("parseElf: stripped binary has no symbols", async () => {
  await withBinary("gcc", ["-static", "-s"], async (bin) => {
    const elf = await compareWithReadelf(bin);
    assert.deepEqual(elf.symbols, []);
    assert.equal(elf.symbolize(elf.entry), undefined);
  });
});

Deno.test("parseElf: rejects an object file (ET_REL)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hermitux_elf_test_" });
  try {
    await Deno.writeTextFile(`${dir}/a.c`, C_SOURCE);
    await run("gcc", ["-c", "-o", `${dir}/a.o`, `${dir}/a.c`]);
    const bytes = await Deno.readFile(`${dir}/a.o`);
    expectElfError(
      () => parseElf(bytes, "a.o"),
      /^a\.o: not an executable \(ET_REL\)$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// Malformed input.

Deno.test("parseElf: empty file and random bytes", () => {
  expectElfError(() => parseElf(new Uint8Array(0), "x"), /^x: not an ELF file$/);
  expectElfError(() => parseElf(new Uint8Array(0)), /^not an ELF file$/);
  const rand = prng(1);
  for (let n = 1; n < 300; n += 7) {
    const bytes = Uint8Array.from({ length: n }, () => (rand() * 256) | 0);
    expectElfError(() => parseElf(bytes, "r"), /^r: not an ELF file$/);
  }
  const shebang = new TextEncoder().encode("#!/bin/sh\necho hi\n");
  expectElfError(() => parseElf(shebang, "s.sh"), /^s\.sh: not an ELF file$/);
});

Deno.test("parseElf: truncated copies of /bin/ls", async () => {
  const bytes = await Deno.readFile("/bin/ls");
  const elf = parseElf(bytes);
  const phEnd = elf.phoff + elf.phnum * elf.phentsize;
  for (const len of [4, 5, 6, 16, 20, 40, 63]) {
    expectElfError(
      () => parseElf(bytes.subarray(0, len), "ls"),
      /^ls: truncated \(ELF header lies beyond the end of the file\)$/,
    );
  }
  for (const len of [64, 100, 64 + 56 * 3 + 10, phEnd - 1]) {
    const index = Math.floor((len - 64) / 56);
    expectElfError(
      () => parseElf(bytes.subarray(0, len), "ls"),
      new RegExp(
        `^ls: truncated \\(program header ${index} lies beyond the end`,
      ),
    );
  }
  expectElfError(
    () => parseElf(bytes.subarray(0, 64 + 56 * 3 + 10), "ls"),
    /^ls: truncated \(program header 3 lies beyond the end of the file\)$/,
  );
  // Headers complete, segment data missing.
  const dataEnd = Math.max(...elf.segments.map((s) => s.offset + s.filesz));
  assert.ok(dataEnd < bytes.length, "section headers follow the segments");
  assert.ok(parseElf(bytes.subarray(0, dataEnd)), "section headers are optional");
  for (const len of [phEnd, phEnd + 100, dataEnd - 1]) {
    expectElfError(
      () => parseElf(bytes.subarray(0, len), "ls"),
      /^ls: truncated \(segment \d+ \(PT_\w+\) data at offset 0x/,
    );
  }
});

Deno.test("parseElf: 32-bit, wrong machine, big-endian", async () => {
  // A 32-bit i386 ELF header, built by hand.
  const elf32 = new Uint8Array(52);
  elf32.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]);
  new DataView(elf32.buffer).setUint16(16, ET_EXEC, true);
  new DataView(elf32.buffer).setUint16(18, 3, true);
  expectElfError(
    () => parseElf(elf32, "a32"),
    /^a32: 32-bit ELF is not supported \(only x86-64\)$/,
  );

  const real = await Deno.readFile("/bin/ls");
  const patched = (patch: (b: Uint8Array, v: DataView) => void) => {
    const b = real.slice();
    patch(b, new DataView(b.buffer));
    return b;
  };
  const machines: [number, RegExp][] = [
    [183, /^ls: wrong machine EM_AARCH64 \(183\), expected x86-64$/],
    [3, /^ls: wrong machine EM_386 \(3\), expected x86-64$/],
    [40, /^ls: wrong machine EM_ARM \(40\), expected x86-64$/],
    [243, /^ls: wrong machine EM_RISCV \(243\), expected x86-64$/],
    [9999, /^ls: wrong machine 9999, expected x86-64$/],
  ];
  for (const [machine, pattern] of machines) {
    const b = patched((_, v) => v.setUint16(18, machine, true));
    expectElfError(() => parseElf(b, "ls"), pattern);
  }
  expectElfError(
    () => parseElf(patched((b) => (b[5] = 2)), "ls"),
    /^ls: big-endian ELF/,
  );
  expectElfError(
    () => parseElf(patched((b) => (b[4] = 3)), "ls"),
    /^ls: invalid ELF class 3$/,
  );
  expectElfError(
    () => parseElf(patched((b) => (b[6] = 0)), "ls"),
    /^ls: unsupported ELF version 0$/,
  );
  expectElfError(
    () => parseElf(patched((_, v) => v.setUint16(16, 4, true)), "ls"),
    /^ls: not an executable \(ET_CORE\)$/,
  );
  expectElfError(
    () => parseElf(patched((_, v) => v.setUint16(16, 0, true)), "ls"),
    /^ls: not an executable \(ET_NONE\)$/,
  );
  // A corrupt section header table only loses the symbols.
  const noSections = patched((_, v) => v.setBigUint64(40, 1n << 40n, true));
  assert.deepEqual(parseElf(noSections).symbols, []);
});

Deno.test("parseElf: hand-built minimal executable", () => {
  const elf = parseElf(
    buildElf([
      TEXT,
      DATA,
      {
        type: PT_GNU_STACK,
        flags: PF_R | PF_W,
        offset: 0,
        vaddr: 0,
        filesz: 0,
        memsz: 0,
        align: 16,
      },
    ]),
  );
  assert.equal(elf.path, "");
  assert.equal(elf.entry, 0x401000);
  assert.equal(elf.segments.length, 3);
  assert.deepEqual(elf.loadRange, { start: 0x400000, end: 0x404000 });
  assert.deepEqual(elf.symbols, []);
  assert.equal(elf.interpreter, undefined);
  assert.equal(elf.symbolize(0x401000), undefined);
});

Deno.test("parseElf: rejects bad program headers", () => {
  const cases: [Uint8Array, RegExp][] = [
    [buildElf([]), /^t: no loadable segments/],
    [
      buildElf([{ type: PT_GNU_STACK, offset: 0, vaddr: 0, filesz: 0, memsz: 0 }]),
      /^t: no loadable segments$/,
    ],
    [
      buildElf([{ ...TEXT, filesz: 0x1001 }]),
      /^t: segment 0 \(PT_LOAD\) has filesz 0x1001 > memsz 0x1000$/,
    ],
    [
      buildElf([TEXT, { ...DATA, filesz: 0x1001, memsz: 0x1001 }]),
      /^t: truncated \(segment 1 \(PT_LOAD\) data at offset 0x1000, size 0x1001 lies beyond the end of the file\)$/,
    ],
    [
      buildElf([TEXT, { ...DATA, offset: 1n << 52n }]),
      /^t: truncated \(segment 1 \(PT_LOAD\) data at offset 0x10000000000000/,
    ],
    [
      buildElf([TEXT, { ...DATA, vaddr: 0x400800, offset: 0x800 }]),
      /^t: PT_LOAD segments overlap/,
    ],
    [buildElf([DATA, TEXT]), /^t: PT_LOAD segments are not sorted by address/],
    [
      buildElf([TEXT, DATA], { phentsize: 57 }),
      /^t: absurd program header size 57 \(expected 56\)$/,
    ],
    [buildElf([TEXT], { phentsize: 0 }), /^t: absurd program header size 0/],
    [
      buildElf([TEXT, { ...DATA, vaddr: 1n << 60n }]),
      /^t: program header 1: vaddr 0x1000000000000000 is too large \(above 2\^53\)$/,
    ],
    [
      buildElf([TEXT, { ...DATA, vaddr: (1n << 53n) - 0x1000n }]),
      /^t: segment 1 \(PT_LOAD\) ends beyond 2\^53$/,
    ],
    [buildElf([TEXT], { entry: 1n << 63n }), /^t: entry point 0x8000000000000000 is too large/],
    [
      buildElf([{ ...TEXT, align: 0x1800 }]),
      /^t: segment 0 \(PT_LOAD\) has alignment 0x1800, not a power of 2$/,
    ],
    [
      buildElf([{ ...TEXT, vaddr: 0x400100 }]),
      /^t: segment 0 \(PT_LOAD\) vaddr 0x400100 and offset 0x0 disagree modulo alignment 0x1000$/,
    ],
    [
      buildElf([TEXT, {
        type: PT_INTERP,
        offset: 0x200,
        vaddr: 0x400200,
        filesz: 8,
        memsz: 8,
        align: 1,
      }]),
      /^t: PT_INTERP is not a NUL-terminated path$/,
    ],
    [
      buildElf([TEXT], { size: 100 }),
      /^t: truncated \(program header 0 lies beyond the end of the file\)$/,
    ],
  ];
  for (const [bytes, pattern] of cases) {
    expectElfError(() => parseElf(bytes, "t"), pattern);
  }
  const many = buildElf([TEXT]);
  new DataView(many.buffer).setUint16(56, 0xffff, true);
  expectElfError(() => parseElf(many, "t"), /^t: extended program header/);
  new DataView(many.buffer).setUint16(56, 2000, true);
  expectElfError(() => parseElf(many, "t"), /^t: too many program headers/);
});

Deno.test("parseElf: PT_INTERP is read without its NUL", () => {
  const bytes = buildElf([
    { type: PT_INTERP, offset: 0x200, vaddr: 0x400200, filesz: 6, memsz: 6, align: 1 },
    TEXT,
  ]);
  bytes.set(new TextEncoder().encode("/ld.so"), 0x200);
  expectElfError(() => parseElf(bytes, "t"), /NUL-terminated/);
  bytes.set(new TextEncoder().encode("/ld.s\0"), 0x200);
  assert.equal(parseElf(bytes).interpreter, "/ld.s");
});

Deno.test("parseElf: fuzzed static binary yields ElfError or a result", async () => {
  await withBinary("gcc", ["-static", "-no-pie"], async (bin) => {
    const bytes = await Deno.readFile(bin);
    const elf = parseElf(bytes);
    const headerEnd = elf.phoff + elf.phnum * elf.phentsize;
    const shoff = Number(new DataView(bytes.buffer).getBigUint64(40, true));
    const rand = prng(42);
    const pick = (n: number) => Math.floor(rand() * n);
    let errors = 0;
    let successes = 0;
    for (let i = 0; i < 2000; i++) {
      let input = bytes;
      let pos = -1;
      let saved = 0;
      const mode = pick(10);
      if (mode === 0) {
        input = bytes.subarray(0, pick(bytes.length));
      } else {
        // Mostly hit the ELF/program headers, sometimes the section table.
        pos = mode < 6
          ? pick(headerEnd)
          : mode < 8
          ? shoff + pick(bytes.length - shoff)
          : pick(bytes.length);
        saved = bytes[pos];
        const interesting = [0, 0xff, 0x7f, 0x80, 1, saved ^ (1 << pick(8))];
        bytes[pos] = rand() < 0.5 ? pick(256) : interesting[pick(6)];
      }
      try {
        const result = parseElf(input, "fuzz");
        successes++;
        result.symbolize(result.entry);
        result.symbolize(result.loadRange.end - 1);
      } catch (err) {
        if (!(err instanceof ElfError)) {
          throw new Error(
            `iteration ${i}: non-ElfError ${err} (pos ${pos}, len ${input.length})`,
          );
        }
        assert.match(err.message, /^fuzz: /);
        errors++;
      } finally {
        if (pos >= 0) bytes[pos] = saved;
      }
    }
    assert.ok(errors > 100, `errors: ${errors}`);
    assert.ok(successes > 100, `successes: ${successes}`);
  });
});

Deno.test("ElfError is an Error", () => {
  const err = new ElfError("boom");
  assert.ok(err instanceof Error);
  assert.equal(err.name, "ElfError");
  assert.equal(err.message, "boom");
});
