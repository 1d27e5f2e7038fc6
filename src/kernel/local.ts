/**
 * The syscalls the guest kernel serves itself (the `local[]` table in
 * main.c), as TypeScript sees them: for the support table in
 * docs/SYSCALLS.md. tests/support_test.ts checks these names against the C
 * table and its host forwards, so the two cannot drift apart.
 * @module
 */

/**
 * Syscalls served in the guest kernel, by name: `null` when the syscall is
 * complete, otherwise a note saying what is missing. Keep in step with
 * `local[]` in src/kernel/main.c (a test compares them).
 */
export const GUEST_SYSCALLS: Readonly<Record<string, string | null>> = {
  // mm.c
  mmap: "the guest kernel places every mapping; file mappings are filled by the host (see the " +
    "host note); MAP_SHARED|MAP_ANONYMOUS is shared with children from the first fork on; " +
    "PROT_NONE and anonymous " +
    "read-only mappings are enforced, a file mapped PROT_READ alone stays writable, PROT_EXEC " +
    "is not required",
  mprotect: "read-only and PROT_NONE are enforced (by the host's page tables); executable " +
    "pages stay writable and PROT_EXEC is not required",
  munmap: "bookkeeping only: unmapped pages stay accessible (zeroed) instead of faulting",
  mremap: "a file's MAP_SHARED mapping is laid again by the host; anonymous MAP_SHARED memory " +
    "moved after a fork is no longer shared; MREMAP_DONTUNMAP unsupported",
  madvise: "MADV_DONTNEED zeroes private memory; other advice is accepted and ignored",
  brk: null,
  // proc.c
  rt_sigaction: null, // handlers here; SIG_DFL and SIG_IGN passed on to the host
  rt_sigprocmask: null,
  getpid: null,
  gettid: null, // one thread: tid == pid
  getppid: null,
  getuid: null,
  geteuid: null, // no setuid binaries in a VM: euid == uid
  getgid: null,
  getegid: null,
  uname: null, // the host's, with nodename "hermitux"
  arch_prctl: "ARCH_SET_FS, ARCH_GET_FS, ARCH_SET_GS and ARCH_GET_GS only; others EINVAL",
  set_tid_address: null,
  set_robust_list: "recorded only: no robust-futex cleanup yet (one thread)",
  rseq: "registration only (unregistering is EINVAL); cpu_id stays 0 on the one vCPU",
  // time.c
  clock_gettime: "REALTIME(_COARSE), MONOTONIC(_RAW/_COARSE), BOOTTIME; CPU-time clocks " +
    "(PROCESS/THREAD_CPUTIME, clock_getcpuclockid's and pthread_getcpuclockid's) passed to " +
    "the host; others EINVAL; REALTIME does not follow host clock changes after boot; " +
    "libc calls it through the vDSO, with no syscall (docs/VDSO.md)",
  gettimeofday: "REALTIME does not follow host clock changes after boot; also in the vDSO",
  time: "REALTIME does not follow host clock changes after boot; also in the vDSO",
};

/**
 * Guest-served syscalls whose handler passes part of its calls on to the
 * host as the same syscall (`hostcall(HC_SYSCALL, N, ...)` in
 * src/kernel/*.c): `mmap` sends file mappings to be filled, `munmap` shared
 * mappings to be taken out, `mremap` a file's shared mapping to be laid again, `rt_sigaction` SIG_DFL and SIG_IGN
 * (pending signals they ignore are dropped), `clock_gettime` the CPU-time
 * clocks. The host serves
 * those only if a syscall module registers a handler.
 */
export const GUEST_FORWARDS: readonly string[] = [
  "mmap",
  "munmap",
  "mremap",
  "rt_sigaction",
  "clock_gettime",
];
