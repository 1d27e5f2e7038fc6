// The small decoder --rewrite=stub trusts (src/analysis/x86len.ts) against
// iced-x86 on every instruction of real libraries and programs: it gives
// iced's length or declines (-1), never another length, and calls
// relocatable only instructions with no control flow and no rip-relative
// operand; and the boundary proof (src/analysis/boundary.ts) accepts only
// whole instructions right before a `syscall` that a full sweep finds too
// (most `mov $imm32, %eax` ones among them), with padding slots that are
// nops.
import { equal, ok } from "node:assert/strict";
import { Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic } from "iced-x86";
import { insnLength, relocatable } from "../src/analysis/x86len.ts";
import { siteShape } from "../src/analysis/boundary.ts";
import { codeRanges } from "../src/analysis/analyze.ts";
import { parseElf } from "../src/loader/elf.ts";

const FILES = [
  "/lib/x86_64-linux-gnu/libc.so.6", // glibc: .eh_frame_hdr
  "/lib64/ld-linux-x86-64.so.2",
  "/lib/x86_64-linux-gnu/libm.so.6", // SSE/AVX/AVX-512 code
  "/usr/bin/python3.11",
  "/bin/busybox", // static, stripped: .eh_frame without a header
  "/lib/ld-musl-x86_64.so.1", // musl: no unwind tables for libc, symbols only
];

/** Those with `syscall` sites: glibc, its loader, static busybox, musl. */
const SITE_FILES = FILES.filter((f) => !/libm|python/.test(f));

/** Every instruction of `path`'s code by linear sweep, with iced's verdict. */
function sweep(path: string, each: (bytes: Uint8Array, at: number, ins: Instruction) => void) {
  const bytes = Deno.readFileSync(path);
  const elf = parseElf(bytes, path);
  const ins = new Instruction();
  for (const r of codeRanges(bytes, elf)) {
    const d = new Decoder(64, r.bytes, DecoderOptions.None);
    d.ip = BigInt(r.addr);
    for (let at = 0; d.canDecode; at += ins.length) {
      d.decodeOut(ins);
      each(r.bytes, at, ins);
    }
    d.free();
  }
  ins.free();
  return { bytes, elf };
}

for (const path of FILES) {
  Deno.test(`insnLength agrees with iced-x86 on ${path}`, () => {
    let n = 0, declined = 0;
    const wrong: string[] = [], moved: string[] = [];
    sweep(path, (bytes, at, ins) => {
      if (ins.isInvalid) return;
      n++;
      const mine = insnLength(bytes, at);
      if (mine === -1) declined++;
      else if (mine !== ins.length && wrong.length < 5) wrong.push(`${ins} at ${ins.ip}`);
      if (
        mine === ins.length && relocatable(bytes, at, mine) &&
        (ins.flowControl !== FlowControl.Next || ins.isIpRelMemoryOperand) && moved.length < 5
      ) moved.push(`${ins} at ${ins.ip}`);
    });
    equal(wrong.join("; "), "");
    equal(moved.join("; "), "");
    ok(n > 10000, `${n} instructions`);
    ok(declined < n / 1000, `${declined} of ${n} declined`);
  });
}

for (const path of SITE_FILES) {
  Deno.test(`siteShape proves only whole instructions before a syscall in ${path}`, () => {
    const before = new Map<number, number>(), movs = new Set<number>(), nops = new Set<number>();
    let prev = { addr: -1, len: 0, mov: false, plain: false };
    const { bytes, elf } = sweep(path, (code, at, ins) => {
      const addr = Number(ins.ip);
      if (ins.mnemonic === Mnemonic.Syscall && prev.addr + prev.len === addr && prev.plain) {
        before.set(addr, prev.len);
        if (prev.len === 5 && prev.mov) movs.add(addr);
      }
      if (ins.mnemonic === Mnemonic.Nop) {
        for (let k = 0; k < ins.length; k++) nops.add(addr + k);
      }
      prev = {
        addr,
        len: ins.length,
        mov: code[at] === 0xb8,
        plain: ins.flowControl === FlowControl.Next && !ins.isIpRelMemoryOperand,
      };
    });
    // Every `0f 05` in the code: the proof must pick out true sites only.
    let proved = 0, provedMovs = 0;
    for (const r of codeRanges(bytes, elf)) {
      for (let i = r.bytes.indexOf(0x0f, 5); i >= 0; i = r.bytes.indexOf(0x0f, i + 1)) {
        const site = r.addr + i, shape = r.bytes[i + 1] === 0x05 && siteShape(bytes, elf, site);
        if (!shape) continue;
        equal(shape.len, before.get(site), `0x${site.toString(16)}: the instruction before`);
        for (const p of shape.pads) {
          for (let k = 0; k < 5; k++) ok(nops.has(p + k), `0x${site.toString(16)}: pad 0x${p}`);
        }
        proved++;
        if (movs.has(site)) provedMovs++;
      }
    }
    ok(movs.size > 0, "no sites");
    // glibc's unwind tables cover nearly every wrapper; musl's libc has none
    // (only its exported functions' symbols), hence the lower bound.
    ok(provedMovs >= movs.size * 0.8, `${provedMovs} of ${movs.size} mov sites proved`);
    ok(proved > provedMovs, `${proved} sites proved`);
  });
}
