/*
 * Re-registers a VM's memory slot (delete, then add) on a host thread of
 * its own, for a machine kept for the run's next process (machine.ts).
 * Deleting the slot is what drops everything KVM derived from the old
 * process's page tables; each update waits for SRCU grace periods: 0.4 ms
 * on an idle host, tens of ms on a loaded one, which the main thread would
 * otherwise wait out inside the next fork or execve.
 *
 * Built as runner.c is: position-independent, no data, no libc.
 */

#define KVM_SET_USER_MEMORY_REGION 0x4020ae46
#define FUTEX_WAKE_PRIVATE 129

/* Shared with src/runner/slots.ts (SLOT_FLUSH): field order and offsets are ABI. */
struct flush {
	int vmfd;               /* 0 */
	volatile int done;      /* 4: 1 when both calls have returned; a futex */
	long err;               /* 8: 0, or -errno of the call that failed */
	unsigned char del[32];  /* 16: struct kvm_userspace_memory_region, size 0 */
	unsigned char add[32];  /* 48: the same slot again, whole */
};

#include "sys.h"

__attribute__((section(".text.entry")))
long flush(struct flush *f)
{
	long r = sys(16, f->vmfd, KVM_SET_USER_MEMORY_REGION, (long)f->del, 0);
	if (r == 0)
		r = sys(16, f->vmfd, KVM_SET_USER_MEMORY_REGION, (long)f->add, 0);
	f->err = r;
	__atomic_store_n(&f->done, 1, __ATOMIC_RELEASE);
	sys(202, (long)&f->done, FUTEX_WAKE_PRIVATE, 0x7fffffff, 0); /* futex */
	return r;
}
