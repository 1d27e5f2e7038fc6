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

/**
 * Reads every counter from a stats fd: name → value (a histogram's
 * buckets summed). Empty when the fd is -1 or cannot be read.
 */
export function readKvmStats(fd: number): Record<string, number> {
  const out: Record<string, number> = {};
  if (fd < 0) return out;
  let buf = new Uint8Array(16384);
  for (;;) {
    const n = Number(libc().pread(fd, buf, BigInt(buf.length), 0n));
    if (n < 0) return out;
    if (n < buf.length) break;
    buf = new Uint8Array(buf.length * 2);
  }
  const v = new DataView(buf.buffer);
  const nameSize = v.getUint32(HEADER.name_size, true);
  const count = v.getUint32(HEADER.num_desc, true);
  const descs = v.getUint32(HEADER.desc_offset, true);
  const data = v.getUint32(HEADER.data_offset, true);
  for (let i = 0; i < count; i++) {
    const d = descs + i * (DESC.size + nameSize);
    const items = v.getUint16(d + DESC.fields.size, true);
    const at = data + v.getUint32(d + DESC.fields.offset, true);
    const raw = buf.subarray(d + DESC.fields.name, d + DESC.fields.name + nameSize);
    const end = raw.indexOf(0);
    let sum = 0;
    for (let k = 0; k < items; k++) sum += Number(v.getBigUint64(at + k * 8, true));
    out[decoder.decode(end < 0 ? raw : raw.subarray(0, end))] = sum;
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
