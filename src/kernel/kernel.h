/* Shared declarations of the guest kernel. */
#ifndef KERNEL_H
#define KERNEL_H
#include "abi.h"

typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long u64;
typedef long i64;
typedef unsigned long size_t;

/* Errno values the guest kernel itself returns (as -E...). */
#define EPERM   1
#define ENOMEM  12
#define EFAULT  14
#define EINVAL  22
#define ENOSYS  38

/* Registers saved by syscall_entry, in push order reversed (see entry.S). */
struct frame {
	u64 r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rcx, rdx, rsi, rdi, rax;
	u64 user_rsp;
};

typedef long (*syscall_fn)(u64, u64, u64, u64, u64, u64);

#define BOOT ((struct boot_info *)BOOT_INFO_ADDR)
#define CPU ((volatile struct percpu *)PERCPU_ADDR)

/* hostcall.c */
long hostcall(u64 kind, u64 nr, u64 a0, u64 a1, u64 a2, u64 a3, u64 a4, u64 a5);

/* lib.c */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int user_ok(u64 addr, u64 len);
int in_high(u64 addr, u64 len);

/* stub.c: --rewrite=stub */
void stub_site(struct frame *f);

/* mm.c, time.c, proc.c: in-guest syscalls */
void mm_init(void);
void time_init(void);
long sys_brk(u64, u64, u64, u64, u64, u64);
long sys_mremap(u64, u64, u64, u64, u64, u64);
long sys_madvise(u64, u64, u64, u64, u64, u64);
long sys_rt_sigaction(u64, u64, u64, u64, u64, u64);
long sys_mmap(u64, u64, u64, u64, u64, u64);
long sys_munmap(u64, u64, u64, u64, u64, u64);
long sys_mprotect(u64, u64, u64, u64, u64, u64);
long sys_clock_gettime(u64, u64, u64, u64, u64, u64);
long sys_gettimeofday(u64, u64, u64, u64, u64, u64);
long sys_time(u64, u64, u64, u64, u64, u64);
long sys_getpid(u64, u64, u64, u64, u64, u64);
long sys_getppid(u64, u64, u64, u64, u64, u64);
long sys_getuid(u64, u64, u64, u64, u64, u64);
long sys_getgid(u64, u64, u64, u64, u64, u64);
long sys_uname(u64, u64, u64, u64, u64, u64);
long sys_arch_prctl(u64, u64, u64, u64, u64, u64);
long sys_set_tid_address(u64, u64, u64, u64, u64, u64);
long sys_set_robust_list(u64, u64, u64, u64, u64, u64);
long sys_rseq(u64, u64, u64, u64, u64, u64);
long sys_rt_sigprocmask(u64, u64, u64, u64, u64, u64);
long sys_gettid(u64, u64, u64, u64, u64, u64);

/* A lock for state the vCPUs share (the region list, the break). */
/* Runs natively at CPL 3 even on kvm_pvm (time.c, hostcall.c). */
static inline u64 rdtsc(void)
{
	u32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

static inline void lock(volatile int *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		while (*l)
			__asm__ volatile("pause");
}

static inline void unlock(volatile int *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

#endif
