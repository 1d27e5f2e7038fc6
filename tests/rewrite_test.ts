// Syscall rewriting: with --rewrite=lazy a site becomes `call *%rax` after
// its first use, with --rewrite=static before boot; programs behave as
// natively either way, numbers past the trampoline's sled included.
import { deepStrictEqual, equal } from "node:assert/strict";
import { fixture, runHermitux, runNative, type Toolchain } from "./fixtures.ts";

for (const tc of ["musl-static", "glibc-static", "glibc-dynamic"] as Toolchain[]) {
  for (const mode of ["lazy", "static"]) {
    Deno.test(`${tc}: --rewrite=${mode} rewrites sites and keeps behaviour`, async () => {
      const bin = await fixture("rewrite_probe", tc);
      const [native, vm, off] = await Promise.all([
        runNative(bin),
        runHermitux(bin, [], { flags: [`--rewrite=${mode}`] }),
        runHermitux(bin, [], { flags: ["--rewrite=off"] }),
      ]);
      equal(native.stdout.match(/^site (.*)$/m)?.[1], "0f 05");
      equal(off.stdout.match(/^site (.*)$/m)?.[1], "0f 05");
      equal(vm.stdout.match(/^site (.*)$/m)?.[1], "ff d0");
      // Unknown numbers are named once on stderr, the same with or without rewriting.
      equal(vm.stderr, off.stderr);
      equal(
        vm.stderr,
        "hermitux: unsupported syscall syscall_600 (600)\n" +
          "hermitux: unsupported syscall syscall_100000 (100000)\n" +
          "hermitux: unsupported syscall syscall_4294967295 (4294967295)\n",
      );
      const same = (o: typeof vm) => ({
        ...o,
        stdout: o.stdout.replace(/^site .*\n/m, ""),
        stderr: "",
      });
      deepStrictEqual(same(vm), same(native));
      deepStrictEqual(same(off), same(native));
    });
  }
  Deno.test(`${tc}: programs behave as natively with --rewrite=static`, async () => {
    for (const name of ["hello", "malloc", "tls", "clock", "syscalls", "mmap", "args_env"]) {
      const bin = await fixture(name, tc);
      const [native, vm] = await Promise.all([
        runNative(bin, ["a"]),
        runHermitux(bin, ["a"], { flags: ["--rewrite=static"] }),
      ]);
      deepStrictEqual(vm, native, name);
    }
  });
}

Deno.test("glibc-dynamic: --rewrite=static also rewrites the libraries ld.so maps", async () => {
  const bin = await fixture("libc_site", "glibc-dynamic");
  const out = async (mode: string) =>
    (await runHermitux(bin, [], { flags: [`--rewrite=${mode}`] })).stdout;
  equal((await runNative(bin)).stdout, "libc site 0f 05\n");
  equal(await out("off"), "libc site 0f 05\n");
  // Lazy rewriting touches only sites that ran; syscall() has not.
  equal(await out("lazy"), "libc site 0f 05\n");
  equal(await out("static"), "libc site ff d0\n");
});
