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
 * It also finds which of the slot's pages are resident (mincore), for the
 * copy into the kept RAM (memory.ts: copyFrom).
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
};

#include "sys.h"

static void wake(volatile int *w)
{
	sys(202, (long)w, FUTEX_WAKE_PRIVATE, 0x7fffffff, 0);
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
		/* Which pages the old process left resident, for the next fork's
		 * copy to clear (memory.ts: copyFrom), found here rather than on
		 * its path: mincore of 1 GiB costs ~0.2 ms on these hosts. */
		if (f->vec)
			f->vec_err = sys(27, f->vec_addr, f->vec_len, f->vec, 0);
		__atomic_store_n(&f->req, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&f->done, 1, __ATOMIC_RELEASE);
		wake(&f->done);
	}
	/* The page may be unmapped once alive is 0: the wake may then fail (EFAULT), harmlessly. */
	__atomic_store_n(&f->alive, 0, __ATOMIC_RELEASE);
	wake(&f->alive);
	return 0;
}
