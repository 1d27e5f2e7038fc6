// The committed guest kernel image is exactly what its sources build.
import { deepStrictEqual } from "node:assert/strict";

Deno.test("kernel.bin rebuilds byte for byte", async () => {
  const dir = new URL("../src/kernel/", import.meta.url).pathname;
  const out = await Deno.makeTempFile({ suffix: ".bin" });
  const r = await new Deno.Command("sh", { args: [`${dir}build.sh`, out] }).output();
  deepStrictEqual(new TextDecoder().decode(r.stderr), "");
  deepStrictEqual(await Deno.readFile(out), await Deno.readFile(`${dir}kernel.bin`));
  deepStrictEqual(
    await Deno.readTextFile(out.replace(/\.bin$/, ".map")),
    await Deno.readTextFile(`${dir}kernel.map`),
  );
});

Deno.test("the vCPU runner's machine code rebuilds byte for byte", async () => {
  const dir = new URL("../src/runner/", import.meta.url).pathname;
  const out = await Deno.makeTempFile({ suffix: ".ts" });
  const r = await new Deno.Command("sh", { args: [`${dir}build.sh`, out] }).output();
  deepStrictEqual(new TextDecoder().decode(r.stderr), "");
  deepStrictEqual(await Deno.readTextFile(out), await Deno.readTextFile(`${dir}code.ts`));
});
