/**
 * The initial process stack as the System V x86-64 psABI and Linux lay it
 * out: argc, argv, envp, auxv, then the strings and AT_RANDOM bytes above.
 * @module
 */

/** auxv tags (`<elf.h>`). */
export const AT = {
  NULL: 0,
  PHDR: 3,
  PHENT: 4,
  PHNUM: 5,
  PAGESZ: 6,
  BASE: 7,
  FLAGS: 8,
  ENTRY: 9,
  UID: 11,
  EUID: 12,
  GID: 13,
  EGID: 14,
  PLATFORM: 15,
  HWCAP: 16,
  CLKTCK: 17,
  SECURE: 23,
  RANDOM: 25,
  HWCAP2: 26,
  EXECFN: 31,
  SYSINFO_EHDR: 33,
  MINSIGSTKSZ: 51,
} as const; // deno-fmt-ignore

/** What goes on the initial stack. */
export interface StackSpec {
  /** argv, argv[0] first. */
  argv: readonly string[];
  /** envp as "K=V" strings. */
  envp: readonly string[];
  /** auxv entries other than the pointer-valued AT_RANDOM/AT_EXECFN/AT_PLATFORM. */
  auxv: ReadonlyArray<readonly [number, number | bigint]>;
  /** The path for AT_EXECFN. */
  execfn: string;
  /** 16 random bytes for AT_RANDOM. */
  random: Uint8Array;
}

/**
 * Writes the stack so that it ends at `top` (exclusive) in `bytes` (guest
 * RAM, identity-mapped) and returns the initial rsp (16-byte aligned,
 * pointing at argc).
 */
export function buildStack(bytes: Uint8Array, top: number, spec: StackSpec): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const enc = new TextEncoder();
  let sp = top - 8; // an 8-byte zero end marker, as Linux leaves
  const putBytes = (b: Uint8Array) => {
    sp -= b.length;
    bytes.set(b, sp);
    return sp;
  };
  const putString = (s: string) => putBytes(enc.encode(s + "\0"));

  const execfn = putString(spec.execfn);
  const envp = spec.envp.map(putString);
  const argv = spec.argv.map(putString);
  const platform = putString("x86_64");
  const random = putBytes(spec.random);
  sp &= ~15;

  const auxv: Array<readonly [number, number | bigint]> = [
    ...spec.auxv,
    [AT.RANDOM, random],
    [AT.EXECFN, execfn],
    [AT.PLATFORM, platform],
    [AT.NULL, 0],
  ];
  const words = 1 + argv.length + 1 + envp.length + 1 + auxv.length * 2;
  sp -= words * 8;
  sp &= ~15;
  let p = sp;
  const put = (x: number | bigint) => {
    view.setBigUint64(p, BigInt(x), true);
    p += 8;
  };
  put(argv.length);
  argv.forEach(put);
  put(0);
  envp.forEach(put);
  put(0);
  for (const [k, v] of auxv) {
    put(k);
    put(v);
  }
  return sp;
}
