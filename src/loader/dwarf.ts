/**
 * Reading DWARF-style data in ELF files (`.eh_frame`, `.eh_frame_hdr`):
 * a bounds-checked cursor and the mapping between link-time addresses and
 * file offsets. Shared by the rewriter's function bounds
 * (src/analysis/boundary.ts) and the profiler's unwinder.
 * @module
 */
import { type ElfFile, PT_LOAD } from "./elf.ts";

/** A bounds-checked little-endian cursor; a read past `end` throws RangeError. */
export class Cursor {
  readonly v: DataView;
  constructor(readonly bytes: Uint8Array, public pos: number, readonly end = bytes.length) {
    this.v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  }
  need(n: number): void {
    if (this.pos < 0 || this.pos + n > this.end) throw new RangeError("eh_frame");
  }
  u8(): number {
    this.need(1);
    return this.bytes[this.pos++];
  }
  u16(): number {
    this.need(2);
    return this.v.getUint16((this.pos += 2) - 2, true);
  }
  u32(): number {
    this.need(4);
    return this.v.getUint32((this.pos += 4) - 4, true);
  }
  uleb(): number {
    let x = 0, shift = 0, b;
    do {
      b = this.u8();
      if (shift < 49) x += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return x;
  }
  sleb(): number {
    let x = 0, shift = 0, b;
    do {
      b = this.u8();
      if (shift < 49) x += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return shift < 53 && b & 0x40 ? x - 2 ** shift : x;
  }
  /**
   * A DW_EH_PE_* value: its format only without `fieldAddr`; with it,
   * pc-relative ones made absolute (other applications throw).
   */
  encoded(enc: number, fieldAddr?: number): number {
    let x: number;
    switch (enc & 0x0f) {
      case 0x00:
      case 0x04:
      case 0x0c:
        this.need(8);
        x = Number(this.v.getBigInt64((this.pos += 8) - 8, true));
        break;
      case 0x02:
        x = this.u16();
        break;
      case 0x0a:
        this.need(2);
        x = this.v.getInt16((this.pos += 2) - 2, true);
        break;
      case 0x03:
        x = this.u32();
        break;
      case 0x0b:
        this.need(4);
        x = this.v.getInt32((this.pos += 4) - 4, true);
        break;
      case 0x01:
        x = this.uleb();
        break;
      case 0x09:
        x = this.sleb();
        break;
      default:
        throw new RangeError("eh_frame encoding");
    }
    if (fieldAddr === undefined) return x;
    if ((enc & 0x70) === 0x10) x += fieldAddr;
    else if ((enc & 0x70) !== 0) throw new RangeError("eh_frame encoding");
    return x;
  }
}

/** File offset of link-time `vaddr` in a PT_LOAD segment, or -1. */
export function offsetOf(elf: ElfFile, vaddr: number): number {
  for (const s of elf.segments) {
    if (s.type === PT_LOAD && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) {
      return s.offset + vaddr - s.vaddr;
    }
  }
  return -1;
}

/** Link-time address of file offset `off` (in a PT_LOAD segment), or -1. */
export function vaddrOf(elf: ElfFile, off: number): number {
  for (const s of elf.segments) {
    if (s.type === PT_LOAD && off >= s.offset && off < s.offset + s.filesz) {
      return s.vaddr + off - s.offset;
    }
  }
  return -1;
}
