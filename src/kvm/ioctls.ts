/**
 * One thin typed wrapper per KVM ioctl hermitux uses (in the manner of
 * rust-vmm's kvm-ioctls). Numbers are from `<linux/kvm.h>`; errors become
 * {@linkcode OsError} naming the ioctl.
 * @module
 */
import { addressOf, check, errno, libc, OsError } from "./libc.ts";
import { readKvmStats } from "./stats.ts";
import { LAYOUTS } from "./structs.ts";

/** ioctl request numbers (x86-64). */
export const KVM = {
  GET_API_VERSION: 0xae00,
  CREATE_VM: 0xae01,
  CHECK_EXTENSION: 0xae03,
  GET_VCPU_MMAP_SIZE: 0xae04,
  GET_SUPPORTED_CPUID: 0xc008ae05,
  SET_USER_MEMORY_REGION: 0x4020ae46,
  CREATE_VCPU: 0xae41,
  RUN: 0xae80,
  GET_REGS: 0x8090ae81,
  SET_REGS: 0x4090ae82,
  GET_SREGS: 0x8138ae83,
  SET_SREGS: 0x4138ae84,
  GET_MSRS: 0xc008ae88,
  SET_MSRS: 0x4008ae89,
  SET_FPU: 0x41a0ae8d,
  SET_CPUID2: 0x4008ae90,
  GET_XCRS: 0x8188aea6,
  SET_XCRS: 0x4188aea7,
  GET_TSC_KHZ: 0xaea3,
  GET_XSAVE: 0x9000aea4,
  SET_XSAVE: 0x5000aea5,
  GET_STATS_FD: 0xaece,
  IOEVENTFD: 0x4040ae79,
  SET_DEVICE_ATTR: 0x4018aee1,
  GET_DEVICE_ATTR: 0x4018aee2,
} as const;

/** Capabilities hermitux asks about. */
export const CAP = { XCRS: 56, GET_TSC_KHZ: 61, SYNC_REGS: 74 } as const;

/** `kvm_run.exit_reason` values. */
export const EXIT = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  INTERNAL_ERROR: 17,
} as const;

const O_RDWR = 2, O_CLOEXEC = 0x80000;
const EINTR = 4;
const EAGAIN = 11;
/** Never notified: `Atomics.wait` on it sleeps the calling thread. */
const nap = new Int32Array(new SharedArrayBuffer(4));

function ioctl(fd: number, req: number, arg: Uint8Array | null, what: string): number {
  return check(what, libc().ioctl(fd, req, arg ? Deno.UnsafePointer.of(arg) : null));
}

function ioctlValue(fd: number, req: number, arg: bigint, what: string): number {
  return check(what, libc().ioctl_u64(fd, req, arg));
}

/** Why `/dev/kvm` could not be used, in one line for the user. */
export class KvmUnavailableError extends Error {}

/** An open `/dev/kvm`: the system-level ioctls. */
export class Kvm {
  /** The file descriptor of `/dev/kvm`. */
  readonly fd: number;

  /** Opens `/dev/kvm` (or `path`), with a clear error when it cannot. */
  constructor(path = "/dev/kvm") {
    const fd = libc().open(new TextEncoder().encode(path + "\0"), O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
      const e = errno();
      const why = e === 2
        ? `${path} does not exist: KVM is not available on this machine (load kvm_intel, kvm_amd or kvm_pvm)`
        : e === 13 || e === 1
        ? `no permission to open ${path}: run as root or add your user to the 'kvm' group`
        : new OsError(`open ${path}`, e).message;
      throw new KvmUnavailableError(`hermitux: ${why}`);
    }
    this.fd = fd;
    const version = this.apiVersion();
    if (version !== 12) {
      this.close();
      throw new KvmUnavailableError(`hermitux: unsupported KVM API version ${version}`);
    }
  }

  /** `KVM_GET_API_VERSION` (always 12). */
  apiVersion(): number {
    return ioctl(this.fd, KVM.GET_API_VERSION, null, "KVM_GET_API_VERSION");
  }

  /** `KVM_CHECK_EXTENSION`: 0 when absent, else a capability-specific value. */
  checkExtension(cap: number): number {
    return ioctlValue(this.fd, KVM.CHECK_EXTENSION, BigInt(cap), "KVM_CHECK_EXTENSION");
  }

  /** `KVM_GET_VCPU_MMAP_SIZE`: bytes to mmap for each vCPU's `kvm_run`. */
  vcpuMmapSize(): number {
    return ioctl(this.fd, KVM.GET_VCPU_MMAP_SIZE, null, "KVM_GET_VCPU_MMAP_SIZE");
  }

  /** `KVM_GET_SUPPORTED_CPUID`: a `struct kvm_cpuid2` buffer with the entries. */
  supportedCpuid(maxEntries = 256): Uint8Array {
    const e = LAYOUTS.kvm_cpuid_entry2.size;
    const buf = new Uint8Array(LAYOUTS.kvm_cpuid2.size + maxEntries * e);
    new DataView(buf.buffer).setUint32(0, maxEntries, true);
    ioctl(this.fd, KVM.GET_SUPPORTED_CPUID, buf, "KVM_GET_SUPPORTED_CPUID");
    return buf;
  }

  /**
   * `KVM_CREATE_VM`. It may wait (for the mmap lock a prefault holds): a
   * signal (a profiler's) makes it EINTR, tried again at once. kvm_pvm
   * answers EAGAIN now and then while other VMs of the host come and go
   * (seen with two test suites creating VMs side by side): tried again
   * after 1, 2, 4… ms, for up to ~0.5 s in all.
   */
  createVm(): VmFd {
    for (let i = 0, waited = 0;; i++) {
      const fd = libc().ioctl_u64(this.fd, KVM.CREATE_VM, 0n);
      const e = fd >= 0 ? 0 : errno();
      if (e === EINTR && i < 8) continue;
      if (e !== EAGAIN || waited >= 500) return new VmFd(check("KVM_CREATE_VM", fd));
      const ms = Math.min(2 ** Math.min(i, 6), 64);
      Atomics.wait(nap, 0, 0, ms);
      waited += ms;
    }
  }

  /** Closes the fd. */
  close(): void {
    libc().close(this.fd);
  }
}

/** A VM file descriptor: memory and vCPU creation. */
export class VmFd {
  /** @param fd from `KVM_CREATE_VM`. */
  constructor(readonly fd: number) {}

  /** `KVM_SET_USER_MEMORY_REGION`. */
  setUserMemoryRegion(slot: number, guestPhys: bigint, size: bigint, host: bigint): void {
    const f = LAYOUTS.kvm_userspace_memory_region.fields;
    const buf = new Uint8Array(LAYOUTS.kvm_userspace_memory_region.size);
    const v = new DataView(buf.buffer);
    v.setUint32(f.slot, slot, true);
    v.setBigUint64(f.guest_phys_addr, guestPhys, true);
    v.setBigUint64(f.memory_size, size, true);
    v.setBigUint64(f.userspace_addr, host, true);
    ioctl(this.fd, KVM.SET_USER_MEMORY_REGION, buf, "KVM_SET_USER_MEMORY_REGION");
  }

  /**
   * `KVM_IOEVENTFD`: a guest store of `len` bytes to guest-physical `addr`
   * (with no memslot) writes eventfd `fd` inside KVM, and the vCPU goes on
   * with no exit. Returns false where KVM refuses it.
   */
  ioeventfd(addr: bigint, len: number, fd: number): boolean {
    const f = LAYOUTS.kvm_ioeventfd.fields;
    const buf = new Uint8Array(LAYOUTS.kvm_ioeventfd.size);
    const v = new DataView(buf.buffer);
    v.setBigUint64(f.addr, addr, true);
    v.setUint32(f.len, len, true);
    v.setInt32(f.fd, fd, true);
    return libc().ioctl(this.fd, KVM.IOEVENTFD, Deno.UnsafePointer.of(buf)) === 0;
  }

  /** `KVM_CREATE_VCPU`, with the vCPU's stats fd opened (see {@linkcode VcpuFd.counters}). */
  createVcpu(id: number): VcpuFd {
    const vcpu = new VcpuFd(ioctlValue(this.fd, KVM.CREATE_VCPU, BigInt(id), "KVM_CREATE_VCPU"));
    vcpu.openStats();
    return vcpu;
  }

  /**
   * The VM's KVM counters (`KVM_GET_STATS_FD`, src/kvm/stats.ts), e.g.
   * `pages_4k` and `pages_2m` mapped, the cumulative ones less `since`;
   * empty where KVM has none.
   */
  counters(since?: Record<string, number>): Record<string, number> {
    if (this.#statsFd === -1) {
      const fd = libc().ioctl(this.fd, KVM.GET_STATS_FD, null);
      this.#statsFd = fd < 0 ? -3 : fd;
    }
    return readKvmStats(this.#statsFd, since);
  }

  /** The stats fd, opened at the first {@linkcode counters} (-1: not yet; -2 or less: none). */
  #statsFd = -1;

  /**
   * Closes the fd on a worker thread. KVM destroys the VM at its last
   * close and waits there for SRCU grace periods, ~1 ms, or 7–12 ms on
   * kvm_pvm once an ioeventfd was registered (its old I/O bus is freed by
   * `call_srcu`, and destruction waits for that with `srcu_barrier`).
   * Close the vCPU fds first, so that this close is the last.
   */
  closeInBackground(): Promise<void> {
    if (this.#statsFd >= 0) libc().close(this.#statsFd);
    this.#statsFd = -2;
    return libc().close_bg(this.fd).then(() => {});
  }
}

/** The host thread that runs a vCPU, which makes its ioctls (see VcpuFd.via). */
export interface VcpuThread {
  /** Makes ioctl `req` with argument `arg` there now: its result, or -errno. */
  call(req: number, arg: bigint): number;
  /**
   * Queues ioctl `req` there, made before the vCPU next runs; false if it
   * cannot (then make it now). `keep` holds the argument until then.
   */
  later(req: number, arg: bigint, keep: Uint8Array): boolean;
  /**
   * Starts ioctl `req` there and returns at once; the returned function
   * waits for its result. `keep` holds the argument until then.
   */
  begin(req: number, arg: bigint, keep: Uint8Array): () => number;
}

/** A vCPU file descriptor. Struct arguments are caller-owned buffers. */
export class VcpuFd {
  /**
   * Makes this vCPU's ioctls (but KVM_RUN) on the thread that runs it.
   * Unset: on the calling thread.
   */
  via?: VcpuThread;

  /** @param fd from `KVM_CREATE_VCPU`. */
  constructor(readonly fd: number) {}

  #ioctl(req: number, arg: Uint8Array | null, what: string): number {
    if (!this.via) return ioctl(this.fd, req, arg, what);
    const r = this.via.call(req, arg ? Deno.UnsafePointer.value(Deno.UnsafePointer.of(arg)) : 0n);
    if (r < 0) throw new OsError(what, -r);
    return r;
  }

  /** As #ioctl, but queued on the vCPU's thread when it has one that can (VcpuThread.later). */
  #later(req: number, arg: Uint8Array, what: string): void {
    const at = Deno.UnsafePointer.value(Deno.UnsafePointer.of(arg));
    if (!this.via?.later(req, at, arg)) this.#ioctl(req, arg, what);
  }

  /**
   * `KVM_GET_XSAVE` into `buf`, begun on the vCPU's thread while the
   * caller goes on; `buf` is filled once the returned function has
   * returned (on the calling thread, at once, without a thread).
   */
  getXsaveBegun(buf: Uint8Array): () => void {
    if (!this.via) {
      this.getXsave(buf);
      return () => {};
    }
    const done = this.via.begin(
      KVM.GET_XSAVE,
      Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)),
      buf,
    );
    return () => {
      const r = done();
      if (r < 0) throw new OsError("KVM_GET_XSAVE", -r);
    };
  }

  /** `KVM_GET_XSAVE` into `buf` before the vCPU next runs (see {@linkcode restoreLater}). */
  getXsaveLater(buf: Uint8Array): void {
    this.#later(KVM.GET_XSAVE, buf, "KVM_GET_XSAVE");
  }

  /**
   * The state a vCPU had (its `kvm_sregs` and `kvm_xsave`) set back before
   * it next runs, with no wait for its thread: an error shows as a failed
   * KVM_RUN then.
   */
  restoreLater(sregs: Uint8Array, xsave: Uint8Array): void {
    this.#later(KVM.SET_SREGS, sregs, "KVM_SET_SREGS");
    this.#later(KVM.SET_XSAVE, xsave, "KVM_SET_XSAVE");
  }

  #statsFd = -1;

  /**
   * Opens the stats fd (`KVM_GET_STATS_FD`, Linux 5.14+) that
   * {@linkcode counters} reads. The ioctl takes the vCPU's lock, so it is
   * made before the vCPU first runs; reading the fd later needs no lock.
   */
  openStats(): void {
    if (this.#statsFd < 0) this.#statsFd = libc().ioctl(this.fd, KVM.GET_STATS_FD, null);
  }

  /**
   * This vCPU's KVM counters so far (`exits`, `pf_fixed`…), the cumulative
   * ones less `since` (an earlier reading); empty where KVM has none.
   */
  counters(since?: Record<string, number>): Record<string, number> {
    return readKvmStats(this.#statsFd, since);
  }

  /**
   * `KVM_RUN`. Returns false when interrupted by a signal (EINTR) or by
   * `immediate_exit`, true after a real exit.
   */
  run(): boolean {
    if (libc().ioctl(this.fd, KVM.RUN, null) >= 0) return true;
    const e = errno();
    if (e === EINTR) return false;
    throw new OsError("KVM_RUN", e);
  }

  /** `KVM_GET_REGS` into a `struct kvm_regs` buffer. */
  getRegs(buf: Uint8Array): void {
    this.#ioctl(KVM.GET_REGS, buf, "KVM_GET_REGS");
  }

  /** `KVM_SET_REGS` from a `struct kvm_regs` buffer. */
  setRegs(buf: Uint8Array): void {
    this.#ioctl(KVM.SET_REGS, buf, "KVM_SET_REGS");
  }

  /** `KVM_GET_SREGS` into a `struct kvm_sregs` buffer. */
  getSregs(buf: Uint8Array): void {
    this.#ioctl(KVM.GET_SREGS, buf, "KVM_GET_SREGS");
  }

  /** `KVM_SET_SREGS` from a `struct kvm_sregs` buffer. */
  setSregs(buf: Uint8Array): void {
    this.#ioctl(KVM.SET_SREGS, buf, "KVM_SET_SREGS");
  }

  /** `KVM_SET_MSRS`: writes `msrs` (index → value); all must be accepted. */
  setMsrs(msrs: ReadonlyArray<readonly [number, bigint]>): void {
    const e = LAYOUTS.kvm_msr_entry;
    const buf = new Uint8Array(LAYOUTS.kvm_msrs.size + msrs.length * e.size);
    const v = new DataView(buf.buffer);
    v.setUint32(0, msrs.length, true);
    msrs.forEach(([index, data], i) => {
      const o = LAYOUTS.kvm_msrs.size + i * e.size;
      v.setUint32(o + e.fields.index, index, true);
      v.setBigUint64(o + e.fields.data, data, true);
    });
    const n = this.#ioctl(KVM.SET_MSRS, buf, "KVM_SET_MSRS");
    if (n !== msrs.length) {
      throw new Error(`KVM_SET_MSRS: MSR ${msrs[n][0].toString(16)} was refused`);
    }
  }

  /** `KVM_GET_MSRS`: the values of MSRs `indices`; all must be readable. */
  getMsrs(indices: readonly number[]): bigint[] {
    const e = LAYOUTS.kvm_msr_entry;
    const buf = new Uint8Array(LAYOUTS.kvm_msrs.size + indices.length * e.size);
    const v = new DataView(buf.buffer);
    v.setUint32(0, indices.length, true);
    const at = (i: number) => LAYOUTS.kvm_msrs.size + i * e.size;
    indices.forEach((index, i) => v.setUint32(at(i) + e.fields.index, index, true));
    const n = this.#ioctl(KVM.GET_MSRS, buf, "KVM_GET_MSRS");
    if (n !== indices.length) {
      throw new Error(`KVM_GET_MSRS: MSR ${indices[n].toString(16)} was refused`);
    }
    return indices.map((_, i) => v.getBigUint64(at(i) + e.fields.data, true));
  }

  /** `KVM_SET_CPUID2` from a `struct kvm_cpuid2` buffer. */
  setCpuid2(buf: Uint8Array): void {
    this.#ioctl(KVM.SET_CPUID2, buf, "KVM_SET_CPUID2");
  }

  /** `KVM_SET_FPU` from a `struct kvm_fpu` buffer. */
  setFpu(buf: Uint8Array): void {
    this.#ioctl(KVM.SET_FPU, buf, "KVM_SET_FPU");
  }

  /**
   * The vCPU's TSC offset from the host's (`KVM_GET_DEVICE_ATTR`,
   * `KVM_VCPU_TSC_CTRL`/`KVM_VCPU_TSC_OFFSET`, Linux 5.16+), or undefined
   * where KVM does not say. Made on the calling thread: no FPU state is
   * involved, and the vCPU must be out of KVM_RUN.
   */
  tscOffset(): bigint | undefined {
    const value = new BigUint64Array(1);
    return this.#tscAttr(KVM.GET_DEVICE_ATTR, value) ? value[0] : undefined;
  }

  /** Sets the vCPU's TSC offset from the host's (see {@linkcode tscOffset}); false if KVM cannot. */
  setTscOffset(offset: bigint): boolean {
    return this.#tscAttr(KVM.SET_DEVICE_ATTR, new BigUint64Array([offset]));
  }

  /** `struct kvm_device_attr` { flags, group 0 (TSC_CTRL), attr 0 (TSC_OFFSET), addr } on `value`. */
  #tscAttr(req: number, value: BigUint64Array): boolean {
    const attr = new BigUint64Array(3);
    attr[2] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(value)));
    const ok = libc().ioctl(this.fd, req, Deno.UnsafePointer.of(attr)) === 0;
    value.fill(value[0]); // keeps `value` alive across the call
    return ok;
  }

  /** `KVM_GET_XSAVE` into a `struct kvm_xsave` buffer (the XSAVE image, standard format). */
  getXsave(buf: Uint8Array): void {
    this.#ioctl(KVM.GET_XSAVE, buf, "KVM_GET_XSAVE");
  }

  /** `KVM_SET_XSAVE` from a `struct kvm_xsave` buffer. */
  setXsave(buf: Uint8Array): void {
    this.#ioctl(KVM.SET_XSAVE, buf, "KVM_SET_XSAVE");
  }

  /** `KVM_SET_XCRS`: sets XCR0. */
  setXcr0(value: bigint): void {
    const f = LAYOUTS.kvm_xcrs.fields;
    const buf = new Uint8Array(LAYOUTS.kvm_xcrs.size);
    const v = new DataView(buf.buffer);
    v.setUint32(f.nr_xcrs, 1, true);
    v.setUint32(f.xcrs + LAYOUTS.kvm_xcr.fields.xcr, 0, true);
    v.setBigUint64(f.xcrs + LAYOUTS.kvm_xcr.fields.value, value, true);
    this.#ioctl(KVM.SET_XCRS, buf, "KVM_SET_XCRS");
  }

  /** `KVM_GET_TSC_KHZ`: the guest TSC frequency in kHz. */
  tscKhz(): number {
    return this.#ioctl(KVM.GET_TSC_KHZ, null, "KVM_GET_TSC_KHZ");
  }

  /** Maps this vCPU's `struct kvm_run` (`size` from `KVM_GET_VCPU_MMAP_SIZE`). */
  mapRun(size: number): Deno.PointerObject {
    const p = libc().mmap(null, BigInt(size), 3, 1, this.fd, 0n);
    if (!p || addressOf(p) === 0xffffffffffffffffn) throw new OsError("mmap kvm_run", errno());
    return p;
  }

  /** Closes the fd (and the stats fd). */
  close(): void {
    if (this.#statsFd >= 0) libc().close(this.#statsFd);
    libc().close(this.fd);
  }
}
