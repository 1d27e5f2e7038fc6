// The committed guest kernel image and vCPU runner code are exactly what
// their sources build.
import { deepStrictEqual } from "node:assert/strict";

/** Runs `folder`'s build.sh into a temp file with `suffix`; returns the folder and the output. */
async function rebuild(folder: string, suffix: string): Promise<[string, string]> {
  const dir = new URL(`../src/${folder}/`, import.meta.url).pathname;
  const out = await Deno.makeTempFile({ suffix });
  const r = await new Deno.Command("sh", { args: [`${dir}build.sh`, out] }).output();
  deepStrictEqual(new TextDecoder().decode(r.stderr), "");
  return [dir, out];
}

Deno.test("kernel.bin rebuilds byte for byte", async () => {
  const [dir, out] = await rebuild("kernel", ".bin");
  const map = out.replace(/\.bin$/, ".map");
  try {
    deepStrictEqual(await Deno.readFile(out), await Deno.readFile(`${dir}kernel.bin`));
    deepStrictEqual(await Deno.readTextFile(map), await Deno.readTextFile(`${dir}kernel.map`));
  } finally {
    await Deno.remove(out);
    await Deno.remove(map).catch(() => {});
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
