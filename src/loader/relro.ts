/**
 * Where a shared library's RELRO starts once it is mapped whole, read from
 * its headers as the guest reads them, for the guest kernel's placement of
 * ld.so's reservation (`struct elf_hint` in src/kernel/abi.h).
 *
 * Why: ld.so makes RELRO read-only with mprotect, which splits that 2 MiB
 * page of guest memory into 4 KiB pages; on kvm_pvm's shadow MMU every few
 * 4 KiB pages touched are a fault of their own (~30 µs). Libraries placed
 * back to back put their text in that page too: python3 -c pass took ~220
 * faults there. With RELRO at the start of a 2 MiB page the text stays in
 * whole ones.
 * @module
 */
import { ABI } from "../kernel/abi.ts";
import type { GuestMemory } from "../vm/memory.ts";
import { bufferAddress, hostSyscall } from "../syscalls/host.ts";
import { PT_GNU_RELRO, PT_LOAD } from "./elf.ts";

const NR_PREAD64 = 17;
const ET_DYN = 3, EM_X86_64 = 62;
const PAGE = 4096, HUGE = 0x200000, HINT_SIZE = 16;

/**
 * RELRO's offset in the mapping and the mapping's length, from an ELF
 * header and its program headers at the start of `head`; undefined when
 * `head` is not that (or RELRO's 2 MiB page would hold more than the data).
 * Not parseElf: that needs the whole file, this only the headers ld.so read.
 */
export function relroHint(head: Uint8Array): { phase: number; extent: number } | undefined {
  if (head.length < 64) return undefined;
  const v = new DataView(head.buffer, head.byteOffset, head.length);
  if (v.getUint32(0, false) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) return undefined;
  if (v.getUint16(16, true) !== ET_DYN || v.getUint16(18, true) !== EM_X86_64) return undefined;
  const phoff = Number(v.getBigUint64(32, true)), size = v.getUint16(54, true);
  const count = v.getUint16(56, true);
  if (size < 56 || count === 0 || phoff + size * count > head.length) return undefined;
  let first = -1, end = 0, relro = -1;
  for (let i = 0; i < count; i++) {
    const o = phoff + i * size, type = v.getUint32(o, true);
    const vaddr = Number(v.getBigUint64(o + 16, true)),
      memsz = Number(v.getBigUint64(o + 40, true));
    if (type === PT_LOAD) {
      if (first < 0) first = Math.floor(vaddr / PAGE) * PAGE;
      end = Math.max(end, vaddr + memsz);
    } else if (type === PT_GNU_RELRO) relro = Math.floor(vaddr / PAGE) * PAGE;
  }
  if (first < 0 || relro <= first) return undefined;
  const extent = Math.ceil(end / PAGE) * PAGE - first, phase = relro - first;
  if (!Number.isSafeInteger(extent) || phase >= extent || extent - phase > HUGE) return undefined;
  return { phase, extent };
}

function slot(fd: number): number {
  return ABI.ELF_HINTS_ADDR + (fd % ABI.NR_ELF_HINTS) * HINT_SIZE;
}

/**
 * After the guest read `n` bytes of fd into guest memory at `buf`: when
 * they are a shared library's headers (ld.so reads them before it maps
 * the library), the hint for the guest kernel. Only program headers past
 * what was read are read here, from the file the guest just read.
 */
export function noteRead(
  mem: GuestMemory,
  fd: number,
  hostFd: number,
  buf: number,
  n: number,
): void {
  if (n < 64 || mem.bytes[buf] !== 0x7f || mem.bytes[buf + 1] !== 0x45) return;
  let head = mem.bytes.subarray(buf, buf + n);
  const v0 = new DataView(head.buffer, head.byteOffset, 64);
  const need = Number(v0.getBigUint64(32, true)) + v0.getUint16(54, true) * v0.getUint16(56, true);
  if (need > n && need <= 4096) {
    // ld.so reads the program headers next when they are past what it read
    // (libc's are): read them now, from a file the guest has just read.
    const whole = new Uint8Array(need);
    whole.set(head);
    const rest = hostSyscall(NR_PREAD64, hostFd, bufferAddress(whole.subarray(n)), need - n, n);
    if (rest !== BigInt(need - n)) return;
    head = whole;
  }
  const hint = relroHint(head);
  if (!hint) return;
  const at = slot(fd), v = mem.view;
  v.setUint32(at, 0, true);
  v.setUint32(at + 4, hint.phase, true);
  v.setBigUint64(at + 8, BigInt(hint.extent), true);
  v.setUint32(at, fd + 1, true);
}

/** Forgets fd's hint (fd now names another file). */
export function forgetHint(mem: GuestMemory, fd: number): void {
  if (mem.view.getUint32(slot(fd), true) === fd + 1) mem.view.setUint32(slot(fd), 0, true);
}

/**
 * The 2 MiB page where RELRO starts, when the guest kernel placed fd's
 * mapping [start, start + len) by its hint; undefined otherwise.
 */
export function relroChunk(
  mem: GuestMemory,
  fd: number,
  start: number,
  len: number,
): number | undefined {
  const at = slot(fd), v = mem.view;
  if (v.getUint32(at, true) !== fd + 1 || Number(v.getBigUint64(at + 8, true)) !== len) {
    return undefined;
  }
  const chunk = start + v.getUint32(at + 4, true);
  return chunk % HUGE === 0 && chunk + HUGE <= mem.size ? chunk : undefined;
}
