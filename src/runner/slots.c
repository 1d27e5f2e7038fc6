/*
 * Re-registers a VM's memory slot (delete, then add) on a host thread of
 * its own, for a machine kept for the run's next process or boot
 * (machine.ts). Deleting the slot is what drops everything KVM derived from
 * the old process's page tables; each update waits for SRCU grace periods:
 * 0.4 ms on an idle host, tens of ms on a loaded one, which the main thread
 * would otherwise wait out inside the next fork, execve or boot().
 *
 * One thread per machine, started once, waits for requests: a thread made
 * per flush cost the main thread its creation (~0.2 ms here), and a
 * nonblocking FFI call a promise that lived until the event loop ran.
 *
 * For a machine kept for another process it then clears the RAM a small
 * process left (clean), off the next fork's or execve's path.
 *
 * Built as runner.c is: position-independent, no data, no libc.
 */

#define KVM_SET_USER_MEMORY_REGION 0x4020ae46
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129
#define REQ_FLUSH 1
#define REQ_QUIT 2

/* Shared with src/runner/slots.ts (FLUSH): field order and offsets are ABI. */
struct flush {
	int vmfd;               /* 0 */
	volatile int done;      /* 4: 1 when both calls have returned; a futex */
	long err;               /* 8: 0, or -errno of the call that failed */
	unsigned char del[32];  /* 16: struct kvm_userspace_memory_region, size 0 */
	unsigned char add[32];  /* 48: the same slot again, whole */
	volatile int req;       /* 80: REQ_FLUSH or REQ_QUIT from the main thread; a futex */
	volatile int alive;     /* 84: 1 until the thread leaves; a futex */
	long vec;               /* 88: mincore's vector, or 0 for no mincore */
	long vec_addr;          /* 96: for [vec_addr, vec_addr + vec_len) */
	long vec_len;           /* 104 */
	long vec_err;           /* 112: mincore's result */
	long zero_budget;       /* 120: bytes of resident runs cleared in place; the rest given back */
	volatile int clean;     /* 128: 1 when every page of the range reads as zero again */
};

#include "sys.h"

static void wake(volatile int *w)
{
	sys(202, (long)w, FUTEX_WAKE_PRIVATE, 0x7fffffff, 0);
}

static void zero(unsigned char *at, long len)
{
	__asm__ volatile("rep stosb" : "+D"(at), "+c"(len) : "a"(0) : "memory");
}

/*
 * Makes the range read as zeros again, as the old process's pages must
 * for the next process, when it left at most the budget resident: those
 * pages are cleared in place and stay resident, so the next process's
 * first touch costs no host fault (a 2 MiB page faulted in and cleared
 * again costs ~0.25 ms here). A larger process's pages are left as they
 * are (-1): a fork copies over them without faults, and an execve gives
 * them back on its path (machine.ts: recycle).
 */
static long clean(struct flush *f)
{
	unsigned char *vec = (unsigned char *)f->vec;
	long pages = f->vec_len >> 12, resident = 0;

	for (long i = 0; i < pages; i++)
		resident += vec[i] & 1;
	if (resident << 12 > f->zero_budget)
		return -1;
	for (long i = 0; i < pages;) {
		if (!(vec[i] & 1)) {
			i++;
			continue;
		}
		long j = i;
		while (j < pages && (vec[j] & 1))
			j++;
		zero((unsigned char *)(f->vec_addr + (i << 12)), (j - i) << 12);
		i = j;
	}
	return 0;
}

/* The thread: serves flushes until asked to quit. */
__attribute__((section(".text.entry")))
long flush_loop(struct flush *f)
{
	for (;;) {
		int req;

		while ((req = __atomic_load_n(&f->req, __ATOMIC_ACQUIRE)) == 0)
			sys(202, (long)&f->req, FUTEX_WAIT_PRIVATE, 0, 0);
		if (req != REQ_FLUSH)
			break;
		long r = sys(16, f->vmfd, KVM_SET_USER_MEMORY_REGION, (long)f->del, 0);
		if (r == 0)
			r = sys(16, f->vmfd, KVM_SET_USER_MEMORY_REGION, (long)f->add, 0);
		f->err = r;
		/* Which pages the old process left resident, found and cleared here
		 * rather than on the next process's path: mincore of 1 GiB alone
		 * costs ~0.2 ms on these hosts. */
		if (f->vec) {
			f->vec_err = sys(27, f->vec_addr, f->vec_len, f->vec, 0);
			if (f->vec_err == 0 && f->zero_budget >= 0 && clean(f) == 0)
				f->clean = 1;
		}
		__atomic_store_n(&f->req, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&f->done, 1, __ATOMIC_RELEASE);
		wake(&f->done);
	}
	/* The page may be unmapped once alive is 0: the wake may then fail (EFAULT), harmlessly. */
	__atomic_store_n(&f->alive, 0, __ATOMIC_RELEASE);
	wake(&f->alive);
	return 0;
}
