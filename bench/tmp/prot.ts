import { boot, defaultRegistry } from "../../mod.ts";
import { libc } from "../../src/kvm/libc.ts";
const P = 1n, RW = 2n, US = 4n, PS = 0x80n, ADDR = 0x000f_ffff_ffff_f000n;
const registry = defaultRegistry();
let ptNext = 0; // PT pages: borrow a spare area
registry.override("mprotect", (c) => {
  const mem = c.process.mem, v = mem.view;
  const [start, len, prot] = c.args;
  const pml4 = 0x20000;
  const pdpt = Number(v.getBigUint64(pml4, true) & ADDR);
  for (let a = start; a < start + len; a += 4096n) {
    const pd = Number(v.getBigUint64(pdpt + Number(a >> 30n) * 8, true) & ADDR);
    const pdi = pd + Number((a >> 21n) & 511n) * 8;
    let pde = v.getBigUint64(pdi, true);
    if (pde & PS) {
      // split: a PT page from the top of RAM's unused area (prototype: fixed)
      const pt = mem.size - (8 << 20) + (ptNext++) * 4096;
      const base = pde & ADDR & ~0x1fffffn;
      for (let i = 0; i < 512; i++) {
        v.setBigUint64(pt + i * 8, (base + BigInt(i * 4096)) | P | RW | US, true);
      }
      pde = BigInt(pt) | P | RW | US;
      v.setBigUint64(pdi, pde, true);
    }
    const pt = Number(pde & ADDR);
    const pti = pt + Number((a >> 12n) & 511n) * 8;
    const old = v.getBigUint64(pti, true);
    v.setBigUint64(pti, (prot & 2n) ? old | RW : old & ~RW, true);
  }
  // Zap KVM's shadow entries for the range: flip the host protection.
  const hva = mem.host + start;
  const mode = Deno.env.get("MODE") ?? "flip";
  if (mode === "flip") {
    libc().mprotect(Deno.UnsafePointer.create(hva), len, 1);
    libc().mprotect(Deno.UnsafePointer.create(hva), len, 3);
  }
  return 0;
});
const r = await boot({ path: Deno.args[0], args: [], registry, stdio: [0, 1, 2] });
console.log("status", r.status);
