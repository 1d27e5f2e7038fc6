/**
 * The length of one x86-64 instruction, and nothing else: what syscall
 * rewriting (`--rewrite=stub`) needs to walk a function from its first
 * byte to a `mov $NR, %eax; syscall` site and prove the `mov` starts an
 * instruction. iced-x86 knows more but costs ~40 ms to load and ~60 ms
 * to sweep libc; this walks a wrapper in microseconds. It answers -1
 * for anything it is not sure of (an invalid or vendor-dependent
 * encoding, XOP, 3DNow!, APX), so a caller can only ever decline too
 * often, never accept a wrong boundary. tests/x86len_test.ts checks it
 * against iced on every instruction of several libraries.
 * @module
 */

// Kinds of the one-byte opcode map.
const BAD = 0, // invalid in 64-bit mode, or an encoding we do not take
  NONE = 1, // opcode only
  M = 2, // ModRM
  MI8 = 3, // ModRM, imm8
  MIZ = 4, // ModRM, imm16/32 by operand size
  I8 = 5, // imm8
  IZ = 6, // imm16/32 by operand size
  MOVI = 7, // b8-bf: imm16/32/64
  REL32 = 8, // e8, e9, 0f 80-8f: rel32 (rel16 with 66 on AMD only)
  I16 = 9, // c2, ca
  ENTER = 10, // c8: imm16, imm8
  MOFFS = 11, // a0-a3: 8-byte address (4 with 67)
  GRP3 = 12, // f6/f7: imm only for /0 and /1
  GRP11 = 13, // c6/c7: /0, or xabort/xbegin with ModRM f8
  POPM = 14; // 8f: pop r/m (/0), else XOP

function table(spec: [number | [number, number], number][], fill: number): Uint8Array {
  const t = new Uint8Array(256).fill(fill);
  for (const [ops, kind] of spec) {
    const [lo, hi] = typeof ops === "number" ? [ops, ops] : ops;
    for (let op = lo; op <= hi; op++) t[op] = kind;
  }
  return t;
}

const ONE = table([
  ...[0x00, 0x08, 0x10, 0x18, 0x20, 0x28, 0x30, 0x38].flatMap((b): [
    [number, number] | number,
    number,
  ][] => [[[b, b + 3], M], [b + 4, I8], [b + 5, IZ]]),
  [[0x50, 0x5f], NONE],
  [0x63, M],
  [0x68, IZ],
  [0x69, MIZ],
  [0x6a, I8],
  [0x6b, MI8],
  [[0x6c, 0x6f], NONE],
  [[0x70, 0x7f], I8],
  [0x80, MI8],
  [0x81, MIZ],
  [0x83, MI8],
  [[0x84, 0x8e], M],
  [0x8f, POPM],
  [[0x90, 0x99], NONE],
  [[0x9b, 0x9f], NONE],
  [[0xa0, 0xa3], MOFFS],
  [[0xa4, 0xa7], NONE],
  [0xa8, I8],
  [0xa9, IZ],
  [[0xaa, 0xaf], NONE],
  [[0xb0, 0xb7], I8],
  [[0xb8, 0xbf], MOVI],
  [[0xc0, 0xc1], MI8],
  [0xc2, I16],
  [0xc3, NONE],
  [[0xc6, 0xc7], GRP11],
  [0xc8, ENTER],
  [0xc9, NONE],
  [0xca, I16],
  [0xcb, NONE],
  [0xcc, NONE],
  [0xcd, I8],
  [0xcf, NONE],
  [[0xd0, 0xd3], M],
  [0xd7, NONE],
  [[0xd8, 0xdf], M],
  [[0xe0, 0xe7], I8],
  [[0xe8, 0xe9], REL32],
  [0xeb, I8],
  [[0xec, 0xef], NONE],
  [0xf1, NONE],
  [[0xf4, 0xf5], NONE],
  [[0xf6, 0xf7], GRP3],
  [[0xf8, 0xfd], NONE],
  [[0xfe, 0xff], M],
], BAD);

// The 0f map. 0f 38 and 0f 3a are handled apart.
const TWO = table([
  [[0x00, 0x03], M],
  [[0x05, 0x09], NONE],
  [0x0b, NONE],
  [0x0d, M],
  [0x0e, NONE],
  [[0x10, 0x1f], M],
  [[0x28, 0x2f], M],
  [[0x30, 0x35], NONE],
  [0x37, NONE],
  [[0x40, 0x6f], M],
  [[0x70, 0x73], MI8],
  [[0x74, 0x76], M],
  [0x77, NONE],
  [[0x78, 0x79], M], // vmread/vmwrite; with 66 or f2 AMD's extrq/insertq (declined below)
  [[0x7c, 0x7f], M],
  [[0x80, 0x8f], REL32],
  [[0x90, 0x9f], M],
  [[0xa0, 0xa2], NONE],
  [0xa3, M],
  [0xa4, MI8],
  [0xa5, M],
  [[0xa8, 0xaa], NONE],
  [0xab, M],
  [0xac, MI8],
  [[0xad, 0xb9], M], // b8 without f3 is jmpe (declined below)
  [0xba, MI8],
  [[0xbb, 0xc1], M],
  [0xc2, MI8],
  [0xc3, M],
  [[0xc4, 0xc6], MI8],
  [0xc7, M],
  [[0xc8, 0xcf], NONE],
  [[0xd0, 0xfe], M],
], BAD);

/** One-byte opcodes that take a LOCK prefix (with a memory operand). */
const LOCKABLE1 = new Set([
  0x00,
  0x01,
  0x08,
  0x09,
  0x10,
  0x11,
  0x18,
  0x19,
  0x20,
  0x21,
  0x28,
  0x29,
  0x30,
  0x31,
  0x80,
  0x81,
  0x83,
  0x86,
  0x87,
  0xf6,
  0xf7,
  0xfe,
  0xff,
]);
/** 0f opcodes that take a LOCK prefix: cmpxchg, xadd, cmpxchg8b/16b, bts/btr/btc. */
const LOCKABLE2 = new Set([0xab, 0xb0, 0xb1, 0xb3, 0xba, 0xbb, 0xc0, 0xc1, 0xc7]);

/** Opcodes of VEX/EVEX map 1 (0f) that take an imm8. */
function map1Imm8(op: number): boolean {
  return (op >= 0x70 && op <= 0x73) || op === 0xc2 || (op >= 0xc4 && op <= 0xc6);
}

/**
 * The index after the ModRM operand at `b[i]` (its SIB and displacement
 * too), or -1 past `limit`. Module-level, as are the other helpers: a
 * closure made per call costs more than the decoding in a cold process.
 */
function skipModrm(b: Uint8Array, i: number, limit: number): number {
  if (i >= limit) return -1;
  const m = b[i++], mod = m >> 6, rm = m & 7;
  if (mod === 3) return i;
  let disp = mod === 1 ? 1 : mod === 2 ? 4 : 0;
  if (rm === 4) {
    if (i >= limit) return -1;
    if (mod === 0 && (b[i] & 7) === 5) disp = 4;
    i++;
  } else if (mod === 0 && rm === 5) disp = 4; // rip-relative
  return i + disp;
}

/** The length from `at` to `i` plus an immediate of `imm` bytes, or -1 past `limit`. */
function lengthTo(at: number, i: number, imm: number, limit: number): number {
  return i >= 0 && i + imm <= limit ? i + imm - at : -1;
}

/**
 * The length in bytes of the instruction at `b[at]` in 64-bit mode (not
 * reading at or past `end`), or -1 when it is invalid, truncated or of a
 * kind this decoder does not take.
 */
export function insnLength(b: Uint8Array, at: number, end: number = b.length): number {
  const limit = Math.min(end, at + 15);
  let i = at, p66 = false, p67 = false, rep = 0, rex = 0, lock = false, op = -1;
  while (i < limit) {
    op = b[i++];
    if (op === 0x66) p66 = true;
    else if (op === 0x67) p67 = true;
    else if (op === 0xf2 || op === 0xf3) rep = op;
    else if (op === 0xf0) lock = true;
    else if (op === 0x26 || op === 0x2e || op === 0x36 || op === 0x3e) void 0;
    else if (op === 0x64 || op === 0x65) void 0;
    else if ((op & 0xf0) === 0x40) {
      rex = op;
      continue; // REX counts only right before the opcode
    } else break;
    rex = 0;
    op = -1;
  }
  if (op < 0 || (op & 0xf0) === 0x40) return -1;
  const rexW = (rex & 8) !== 0, immZ = p66 && !rexW ? 2 : 4;

  if (op === 0xc4 || op === 0xc5 || op === 0x62) {
    // VEX (c5: 2 bytes, c4: 3) or EVEX (62: 4): #UD after 66, f2, f3, f0 or REX.
    if (p66 || rep || lock || rex) return -1;
    const payload = op === 0xc5 ? 1 : op === 0xc4 ? 2 : 3;
    if (i + payload >= limit) return -1;
    const p0 = b[i], p1 = b[i + 1];
    const map = op === 0xc5 ? 1 : op === 0xc4 ? p0 & 0x1f : p0 & 0x7;
    if (op === 0x62 && ((p0 & 0x08) !== 0 || (p1 & 0x04) === 0)) return -1; // APX/reserved
    if (map < 1 || map > 3) return -1;
    i += payload;
    const opc = b[i++];
    if (map === 1 && opc === 0x77) return op === 0x62 ? -1 : i - at; // vzeroupper/vzeroall
    return lengthTo(
      at,
      skipModrm(b, i, limit),
      map === 3 || (map === 1 && map1Imm8(opc)) ? 1 : 0,
      limit,
    );
  }

  if (op === 0x0f) {
    if (i >= limit) return -1;
    const op2 = b[i++];
    if (lock && !LOCKABLE2.has(op2)) return -1;
    if (op2 === 0x38 || op2 === 0x3a) {
      if (i >= limit) return -1;
      return lengthTo(at, skipModrm(b, i + 1, limit), op2 === 0x3a ? 1 : 0, limit);
    }
    const kind = TWO[op2];
    if ((op2 === 0x78 || op2 === 0x79) && (p66 || rep === 0xf2)) return -1;
    if (op2 === 0xb8 && rep !== 0xf3) return -1;
    switch (kind) {
      case NONE:
        return i - at;
      case M:
      case MI8:
        if (i >= limit || (lock && b[i] >= 0xc0)) return -1;
        return lengthTo(at, skipModrm(b, i, limit), kind === MI8 ? 1 : 0, limit);
      case REL32:
        return p66 ? -1 : lengthTo(at, i, 4, limit);
    }
    return -1;
  }

  if (lock && !LOCKABLE1.has(op)) return -1;
  const kind = ONE[op];
  switch (kind) {
    case NONE:
      return i - at;
    case I8:
      return lengthTo(at, i, 1, limit);
    case IZ:
      return lengthTo(at, i, immZ, limit);
    case MOVI:
      return lengthTo(at, i, rexW ? 8 : p66 ? 2 : 4, limit);
    case REL32:
      return p66 ? -1 : lengthTo(at, i, 4, limit);
    case I16:
      return lengthTo(at, i, 2, limit);
    case ENTER:
      return lengthTo(at, i, 3, limit);
    case MOFFS:
      return lengthTo(at, i, p67 ? 4 : 8, limit);
    case BAD:
      return -1;
  }
  // The rest have a ModRM byte.
  if (i >= limit) return -1;
  const m = b[i], reg = (m >> 3) & 7, mem = m < 0xc0;
  const after = skipModrm(b, i, limit);
  switch (kind) {
    case M:
      if (op === 0xfe && reg > 1) return -1;
      if (op === 0xff && (reg === 7 || (!mem && (reg === 3 || reg === 5)))) return -1;
      if (op === 0x8d && !mem) return -1; // lea of a register
      if (lock && (!mem || (op >= 0xfe && reg > 1))) return -1;
      return lengthTo(at, after, 0, limit);
    case MI8:
    case MIZ:
      if (lock && (!mem || reg === 7)) return -1; // lock cmp
      return lengthTo(at, after, kind === MI8 ? 1 : immZ, limit);
    case GRP3:
      if (lock && (!mem || (reg !== 2 && reg !== 3))) return -1; // lock not/neg only
      return lengthTo(at, after, reg > 1 ? 0 : op === 0xf6 ? 1 : immZ, limit);
    case GRP11:
      if (reg !== 0 && !(reg === 7 && m === 0xf8)) return -1;
      return lengthTo(at, after, op === 0xc6 ? 1 : immZ, limit);
    case POPM:
      if (reg !== 0) return -1; // XOP, or an invalid /1-/7
      return lengthTo(at, after, 0, limit);
  }
  return -1;
}

/** One-byte opcodes whose instruction does the same wherever it runs (no control flow). */
const MOVABLE1 = table([
  ...[0x00, 0x08, 0x10, 0x18, 0x20, 0x28, 0x30, 0x38].map((b): [[number, number], number] => [
    [b, b + 5],
    1,
  ]),
  [[0x50, 0x5f], 1], // push, pop
  [[0x63, 0x63], 1], // movsxd
  [[0x68, 0x6b], 1], // push imm, imul
  [[0x80, 0x8d], 1], // group 1, test, xchg, mov, mov from Sreg, lea
  [[0x90, 0x99], 1], // xchg, cbw, cwd
  [[0xa8, 0xa9], 1], // test imm
  [[0xb0, 0xbf], 1], // mov imm
  [[0xc0, 0xc1], 1], // shifts
  [[0xc6, 0xc7], 1], // mov imm to r/m (xabort, xbegin: excluded below)
  [[0xd0, 0xd3], 1], // shifts
  [[0xf6, 0xf7], 1], // test, not, neg, mul, div
  [[0xfe, 0xff], 1], // inc, dec, push r/m (calls and jumps excluded below)
], 0);

/** 0f opcodes likewise: SSE and MMX, cmov, setcc, bit tests, shld/shrd, movzx, xadd, bswap. */
const MOVABLE2 = table([
  [[0x10, 0x1f], 1],
  [[0x28, 0x2f], 1],
  [[0x40, 0x76], 1],
  [[0x7c, 0x7f], 1],
  [[0x90, 0x9f], 1],
  [[0xa3, 0xa5], 1],
  [[0xab, 0xad], 1],
  [[0xaf, 0xb1], 1],
  [[0xb3, 0xb3], 1],
  [[0xb6, 0xb8], 1],
  [[0xba, 0xc6], 1],
  [[0xc8, 0xfe], 1],
], 0);

/**
 * Whether the instruction at `b[at]` ({@linkcode insnLength} bytes) does
 * the same at another address: no branch, call, return, interrupt or
 * system instruction, no rip-relative operand. What a syscall rewriter may
 * copy into a stub and run there.
 */
export function relocatable(b: Uint8Array, at: number, len: number): boolean {
  let i = at;
  while (i < at + len && (LEGACY.has(b[i]) || (b[i] & 0xf0) === 0x40)) i++;
  const op = b[i++];
  // VEX and EVEX encode no control flow; their ModRM follows 1-3 payload bytes.
  const vex = op === 0xc5 ? 1 : op === 0xc4 ? 2 : op === 0x62 ? 3 : 0;
  let modrm: number;
  if (vex) {
    i += vex + 1; // payload, opcode
    modrm = b[i];
  } else if (op === 0x0f) {
    const op2 = b[i++];
    if (op2 === 0x38 || op2 === 0x3a) i++; // SSSE3/SSE4/AES/SHA: all movable
    else if (!MOVABLE2[op2]) return false;
    modrm = b[i];
  } else {
    if (!MOVABLE1[op]) return false;
    modrm = b[i];
    const reg = (modrm >> 3) & 7;
    if ((op === 0xc6 || op === 0xc7) && reg !== 0) return false; // xabort, xbegin
    if (op === 0xff && reg >= 2 && reg <= 5) return false; // call, jmp
    if (op >= 0x50 && op <= 0x5f) return true; // no ModRM
    if ((op >= 0x90 && op <= 0x99) || (op >= 0xb0 && op <= 0xbf) || op === 0x68 || op === 0x6a) {
      return true;
    }
    if (op === 0xa8 || op === 0xa9 || (op & 0xc7) === 0x04 || (op & 0xc7) === 0x05) return true;
  }
  // A rip-relative operand would point elsewhere from the stub.
  return !((modrm & 0xc7) === 0x05);
}

const LEGACY = new Set([0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65]);
