// Debian's static busybox under hermitux, compared with its native run.
import { equal } from "node:assert/strict";
import { assertSameAsNative } from "./fixtures.ts";

const BUSYBOX = "/bin/busybox";

Deno.test("busybox echo", async () => {
  const out = await assertSameAsNative(BUSYBOX, ["echo", "hello", "from", "busybox"]);
  equal(out.stdout, "hello from busybox\n");
});

Deno.test("busybox true", async () => {
  equal((await assertSameAsNative(BUSYBOX, ["true"])).code, 0);
});

Deno.test("busybox false", async () => {
  equal((await assertSameAsNative(BUSYBOX, ["false"])).code, 1);
});

Deno.test("busybox cat copies stdin", async () => {
  const text = "line one\nline two\n".repeat(1000);
  equal((await assertSameAsNative(BUSYBOX, ["cat"], { stdin: text })).stdout, text);
});

Deno.test("busybox file tools through the default mounts", async () => {
  // The default /etc holds copies of what programs need (passwd, hostname…), not all of /etc.
  for (
    const args of [
      ["ls", "-a", "/usr/include/linux/netfilter"],
      ["wc", "-l", "/etc/passwd"],
      ["sha256sum", "/etc/hostname", "/etc/passwd"],
      ["find", "/etc", "-maxdepth", "1", "-name", "passwd"],
      ["find", "/usr/include/linux", "-maxdepth", "1", "-name", "if_*"],
      ["head", "-n", "2", "/etc/passwd"],
      ["cat", "/etc/no-such-file"],
    ]
  ) {
    await assertSameAsNative(BUSYBOX, args);
  }
  const out = await assertSameAsNative(BUSYBOX, ["awk", "{ print $2 }"], { stdin: "a b c\n" });
  equal(out.stdout, "b\n");
});
