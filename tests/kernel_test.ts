// The committed guest kernel image and vCPU runner code are exactly what
// their sources build.
import { deepStrictEqual } from "node:assert/strict";

/**
 * Runs `folder`'s build.sh into a temp file with `suffix` (and `extra`
 * further outputs); returns the folder and the outputs.
 */
async function rebuild(folder: string, suffix: string, extra = 0): Promise<[string, ...string[]]> {
  const dir = new URL(`../src/${folder}/`, import.meta.url).pathname;
  const outs = [await Deno.makeTempFile({ suffix })];
  for (let i = 0; i < extra; i++) outs.push(await Deno.makeTempFile());
  const r = await new Deno.Command("sh", { args: [`${dir}build.sh`, ...outs] }).output();
  deepStrictEqual(new TextDecoder().decode(r.stderr), "");
  return [dir, ...outs];
}

Deno.test("kernel.bin and the vDSO rebuild byte for byte", async () => {
  const [dir, out, vdso] = await rebuild("kernel", ".bin", 1);
  const map = out.replace(/\.bin$/, ".map");
  try {
    deepStrictEqual(await Deno.readFile(out), await Deno.readFile(`${dir}kernel.bin`));
    deepStrictEqual(await Deno.readTextFile(map), await Deno.readTextFile(`${dir}kernel.map`));
    deepStrictEqual(await Deno.readFile(vdso), await Deno.readFile(`${dir}vdso/vdso.so`));
  } finally {
    await Deno.remove(out);
    await Deno.remove(map).catch(() => {});
    await Deno.remove(vdso);
  }
});

Deno.test("the vCPU runner's machine code rebuilds byte for byte", async () => {
  const [dir, out] = await rebuild("runner", ".ts");
  try {
    deepStrictEqual(await Deno.readTextFile(out), await Deno.readTextFile(`${dir}code.ts`));
  } finally {
    await Deno.remove(out);
  }
});
