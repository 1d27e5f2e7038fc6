/**
 * A VM's memory slot deleted and added again on a host thread of its own
 * (slots.c, run as a nonblocking FFI call): what readies a kept machine
 * for the run's next process without the main thread waiting out KVM's
 * SRCU grace periods (0.4 ms idle, tens of ms on a loaded host).
 * @module
 */
import { LAYOUTS } from "../kvm/structs.ts";
import { codePages, futexWait, futexWake, sharedPage, startThread } from "./mod.ts";
import { SLOTS_CODE } from "./code.ts";
import { libc, OsError } from "../kvm/libc.ts";

/** Byte offsets in `struct flush` (slots.c). */
const FLUSH = {
  vmfd: 0,
  done: 4,
  err: 8,
  del: 16,
  add: 48,
  req: 80,
  alive: 84,
  vec: 88,
  vecAddr: 96,
  vecLen: 104,
  vecErr: 112,
  zeroBudget: 120,
  clean: 128,
} as const;
const REQ_FLUSH = 1, REQ_QUIT = 2;

let flushCode: Deno.PointerObject | undefined;

/** slots.c's thread (`flush_loop`), loaded once. */
function flushLoop(): Deno.PointerObject {
  return flushCode ??= codePages(SLOTS_CODE);
}

/** A machine's page for {@linkcode SlotFlush} requests, with the thread that serves them. */
export type FlushPage = ReturnType<typeof sharedPage> & { started: boolean };

/** A page for a machine's flushes (free it with {@linkcode freeFlushPage}). */
export function flushPage(): FlushPage {
  return { ...sharedPage(), started: false };
}

/** Ends the page's thread, if it has one, and unmaps the page (no flush may be under way). */
export function freeFlushPage(page: FlushPage): void {
  if (page.started) {
    Atomics.store(page.words, FLUSH.req / 4, REQ_QUIT);
    futexWake(page.addr + BigInt(FLUSH.req));
    while (Atomics.load(page.words, FLUSH.alive / 4) !== 0) {
      futexWait(page.addr + BigInt(FLUSH.alive), 1, 100);
    }
  }
  libc().munmap(Deno.UnsafePointer.create(page.addr), 4096n);
}

/** One VM's slot 0 re-registered in the background: started, then waited for. */
export class SlotFlush {
  readonly #page: FlushPage;
  /** The vector the thread's mincore fills, alive until the thread is done with it. */
  readonly #vec?: Uint8Array;

  /**
   * Starts deleting slot 0 of VM `vmfd` and adding it again as `size`
   * bytes of host memory at `host`, guest-physical 0 up, on the page's
   * thread (started at its first flush); the request goes in `page`. With
   * `clean`, the thread then clears those bytes in place if at most
   * `budget` of them are resident (slots.c: clean); `vec` (a byte per
   * page) is its mincore's vector.
   */
  constructor(
    page: FlushPage,
    vmfd: number,
    host: bigint,
    size: number,
    clean?: { vec: Uint8Array; budget: number },
  ) {
    this.#page = page;
    this.#vec = clean?.vec;
    const v = page.view, f = LAYOUTS.kvm_userspace_memory_region.fields;
    v.setInt32(FLUSH.done, 0, true);
    const vec = clean ? Deno.UnsafePointer.value(Deno.UnsafePointer.of(clean.vec)) : 0n;
    v.setBigUint64(FLUSH.vec, vec, true);
    v.setBigUint64(FLUSH.vecAddr, host, true);
    v.setBigUint64(FLUSH.vecLen, BigInt(Math.min(size, (clean?.vec.length ?? 0) * 4096)), true);
    v.setBigInt64(FLUSH.vecErr, -1n, true);
    v.setBigInt64(FLUSH.zeroBudget, BigInt(clean?.budget ?? -1), true);
    v.setInt32(FLUSH.clean, 0, true);
    v.setInt32(FLUSH.vmfd, vmfd, true);
    for (const [at, len] of [[FLUSH.del, 0n], [FLUSH.add, BigInt(size)]] as const) {
      v.setUint32(at + f.slot, 0, true);
      v.setBigUint64(at + f.guest_phys_addr, 0n, true);
      v.setBigUint64(at + f.memory_size, len, true);
      v.setBigUint64(at + f.userspace_addr, host, true);
    }
    Atomics.store(page.words, FLUSH.req / 4, REQ_FLUSH);
    if (page.started) {
      futexWake(page.addr + BigInt(FLUSH.req));
      return;
    }
    // The thread's first look finds the request already there.
    Atomics.store(page.words, FLUSH.alive / 4, 1);
    const rc = startThread(flushLoop(), page.addr);
    if (rc !== 0) {
      Atomics.store(page.words, FLUSH.alive / 4, 0);
      Atomics.store(page.words, FLUSH.req / 4, 0);
      throw new OsError("pthread_create", rc);
    }
    page.started = true;
  }

  /** Whether both calls have returned. */
  get done(): boolean {
    return Atomics.load(this.#page.words, FLUSH.done / 4) === 1;
  }

  /** After {@linkcode wait}: whether the thread cleared the memory (the constructor's `clean`). */
  get cleaned(): boolean {
    return this.#vec !== undefined && Atomics.load(this.#page.words, FLUSH.clean / 4) === 1;
  }

  /** Waits until both calls have returned; throws if one failed. */
  wait(): void {
    while (!this.done) futexWait(this.#page.addr + BigInt(FLUSH.done), 0, 100);
    const err = Number(this.#page.view.getBigInt64(FLUSH.err, true));
    if (err < 0) throw new OsError("KVM_SET_USER_MEMORY_REGION", -err);
  }
}
