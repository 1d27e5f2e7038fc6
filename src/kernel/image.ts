/**
 * The prebuilt guest kernel image (`kernel.bin`, built by
 * `deno task kernel`) and its header, and the prebuilt vDSO
 * (`vdso/vdso.so`, docs/VDSO.md).
 * @module
 */
import { ABI, BOOT_MAGIC, IMAGE_HEADER } from "./abi.ts";
import type { KernelEntries } from "../vm/cpu.ts";

/** The kernel image bytes and its entry points. */
export interface KernelImage extends KernelEntries {
  /** The flat image, loaded at `KERNEL_ADDR`. */
  bytes: Uint8Array;
  /** End of the zero-initialised data that follows the image. */
  bssEnd: number;
  /**
   * Addresses of the guest kernel's mapping list and program break (for
   * /proc/self/maps), and of the lock its mm calls hold (fork's copy takes it).
   */
  mm: { regions: number; nregions: number; brkStart: number; brkCur: number; lock: number };
  /** Where a new thread's vCPU starts: the syscall return path, on a frame the host built. */
  syscallReturn: number;
  /** Where page 0's trampoline jumps (syscall sites rewritten as `call *%rax`). */
  zpolineEntry: number;
  /** Where a rewritten site's stub jumps (--rewrite=stub), or #UD at its `ud2` resumes. */
  stubEntry: number;
  /** Signal stubs (entry.S): enter a handler saving the live FPU state at its argument first… */
  sigEnterSave: number;
  /** …enter a handler with a clean FPU… */
  sigEnter: number;
  /** …or resume after rt_sigreturn, loading the FPU state at its argument… */
  sigReturn: number;
  /** …or resume with the FPU state as it is. */
  sigResume: number;
  /** The vDSO, an ELF shared object copied into every process (`AT_SYSINFO_EHDR`). */
  vdso: Uint8Array;
}

/**
 * Where the vDSO is copied in a process whose stack ends at `stackTop`:
 * the pages right below it (the initial stack goes below them), which the
 * stack's first 2 MiB page makes resident anyway.
 */
export function vdsoStart(stackTop: number, kernel: KernelImage): number {
  return stackTop - Math.ceil(kernel.vdso.length / ABI.PAGE_SIZE) * ABI.PAGE_SIZE;
}

let cached: Promise<KernelImage> | undefined;

/** A file next to this module, read from disk or fetched. */
async function load(name: string): Promise<Uint8Array> {
  const url = new URL(name, import.meta.url);
  return url.protocol === "file:"
    ? await Deno.readFile(url)
    : new Uint8Array(await (await fetch(url)).arrayBuffer());
}

async function read(): Promise<KernelImage> {
  const url = new URL("./kernel.bin", import.meta.url);
  const [bytes, vdso] = await Promise.all([load("./kernel.bin"), load("./vdso/vdso.so")]);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = (off: number) => Number(v.getBigUint64(off, true));
  if (bytes.length < 144 || v.getBigUint64(IMAGE_HEADER.magic, true) !== BOOT_MAGIC) {
    throw new Error(`${url}: not a hermitux kernel image (run 'deno task kernel')`);
  }
  const image = {
    bytes,
    start: at(IMAGE_HEADER.start),
    syscallEntry: at(IMAGE_HEADER.syscall_entry),
    exceptionStubs: at(IMAGE_HEADER.exception_stubs),
    bssEnd: at(IMAGE_HEADER.bss_end),
    mm: {
      regions: at(IMAGE_HEADER.regions),
      nregions: at(IMAGE_HEADER.nregions),
      brkStart: at(IMAGE_HEADER.brk_start),
      brkCur: at(IMAGE_HEADER.brk_cur),
      lock: at(IMAGE_HEADER.mm_lock),
    },
    syscallReturn: at(IMAGE_HEADER.syscall_return),
    zpolineEntry: at(IMAGE_HEADER.zpoline_entry),
    sigEnterSave: at(IMAGE_HEADER.sig_enter_save),
    sigEnter: at(IMAGE_HEADER.sig_enter),
    sigReturn: at(IMAGE_HEADER.sig_return),
    sigResume: at(IMAGE_HEADER.sig_resume),
    stubEntry: at(IMAGE_HEADER.stub_entry),
    vdso,
  };
  if (image.bssEnd > ABI.STUB_ADDR) throw new Error("kernel image too large");
  if (vdso.length < 64 || vdso[0] !== 0x7f || vdso[1] !== 0x45 || vdso[2] !== 0x4c) {
    throw new Error(`${new URL("./vdso/vdso.so", import.meta.url)}: not an ELF file`);
  }
  return image;
}

/** The kernel image, read once per process. */
export function kernelImage(): Promise<KernelImage> {
  cached ??= read();
  return cached;
}
