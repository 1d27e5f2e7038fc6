/**
 * KVM's binary statistics (`KVM_GET_STATS_FD`, Linux 5.14+): the counters
 * KVM keeps per VM and per vCPU, such as `exits`, `pf_fixed` (shadow or
 * nested page faults it fixed), `insn_emulation` and `mmio_exits`. On
 * kvm_pvm each of those costs about as much as a VM exit, which makes them
 * the first thing to look at when a guest is slower than it should be.
 * @module
 */
import { libc } from "./libc.ts";
import { LAYOUTS } from "./structs.ts";

const HEADER = LAYOUTS.kvm_stats_header.fields, DESC = LAYOUTS.kvm_stats_desc;
const decoder = new TextDecoder();
/** KVM_STATS_TYPE_MASK and KVM_STATS_TYPE_CUMULATIVE (the other types are gauges and peaks). */
const TYPE_MASK = 0xf, CUMULATIVE = 0;

/** Where each counter is in a stats fd's data, as its descriptors say. */
interface Layout {
  names: string[];
  at: number[];
  items: number[];
  cumulative: boolean[];
}

/**
 * Read buffer shared by every call (16 KiB or more): two new ones per run
 * weighed on the C heap of a process booting again and again.
 */
let scratch = new Uint8Array(16384);
/** Decoded descriptors, by the header's shape (the same for every VM, and for every vCPU). */
const layouts = new Map<string, Layout>();

function layoutOf(v: DataView, buf: Uint8Array): Layout {
  const nameSize = v.getUint32(HEADER.name_size, true);
  const count = v.getUint32(HEADER.num_desc, true);
  const descs = v.getUint32(HEADER.desc_offset, true);
  const data = v.getUint32(HEADER.data_offset, true);
  const name = (i: number) => {
    const d = descs + i * (DESC.size + nameSize) + DESC.fields.name;
    const raw = buf.subarray(d, d + nameSize), end = raw.indexOf(0);
    return decoder.decode(end < 0 ? raw : raw.subarray(0, end));
  };
  // The first and last names tell a VM's descriptors from a vCPU's of the same shape.
  const key = `${nameSize}:${count}:${descs}:${data}:${count && name(0)}:${
    count && name(count - 1)
  }`;
  let l = layouts.get(key);
  if (l) return l;
  l = { names: [], at: [], items: [], cumulative: [] };
  for (let i = 0; i < count; i++) {
    const d = descs + i * (DESC.size + nameSize);
    l.names.push(name(i));
    l.items.push(v.getUint16(d + DESC.fields.size, true));
    l.at.push(data + v.getUint32(d + DESC.fields.offset, true));
    l.cumulative.push((v.getUint32(d + DESC.fields.flags, true) & TYPE_MASK) === CUMULATIVE);
  }
  layouts.set(key, l);
  return l;
}

/**
 * Reads every counter from a stats fd: name → value (a histogram's
 * buckets summed), less what `since` (an earlier reading of the same fd)
 * counted for the cumulative ones: a reused VM's counts since then. Empty
 * when the fd is -1 or cannot be read.
 */
export function readKvmStats(fd: number, since?: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  if (fd < 0) return out;
  for (;;) {
    const n = Number(libc().pread(fd, scratch, BigInt(scratch.length), 0n));
    if (n < 0) return out;
    if (n < scratch.length) break;
    scratch = new Uint8Array(scratch.length * 2);
  }
  const buf = scratch, v = new DataView(buf.buffer);
  const l = layoutOf(v, buf);
  for (let i = 0; i < l.names.length; i++) {
    let sum = 0;
    for (let k = 0; k < l.items[i]; k++) sum += Number(v.getBigUint64(l.at[i] + k * 8, true));
    if (since && l.cumulative[i]) sum -= since[l.names[i]] ?? 0;
    out[l.names[i]] = sum;
  }
  return out;
}

/** Adds `more` into `into`, counter by counter; returns `into`. */
export function addKvmStats(
  into: Record<string, number>,
  more: Record<string, number>,
): Record<string, number> {
  for (const [k, n] of Object.entries(more)) into[k] = (into[k] ?? 0) + n;
  return into;
}
