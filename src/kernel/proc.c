/* Identity, uname, TLS and signal-mask bookkeeping: no host needed. */
#include "kernel.h"

#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004


long sys_getpid(u64 a, u64 b, u64 c, u64 d, u64 e, u64 f) { return BOOT->pid; }
long sys_getppid(u64 a, u64 b, u64 c, u64 d, u64 e, u64 f) { return BOOT->ppid; }
long sys_getuid(u64 a, u64 b, u64 c, u64 d, u64 e, u64 f) { return BOOT->uid; }
long sys_getgid(u64 a, u64 b, u64 c, u64 d, u64 e, u64 f) { return BOOT->gid; }

long sys_uname(u64 buf, u64 b, u64 c, u64 d, u64 e, u64 f)
{
	if (!user_ok(buf, sizeof BOOT->uts))
		return -EFAULT;
	memcpy((void *)buf, BOOT->uts, sizeof BOOT->uts);
	return 0;
}

/* FSGSBASE is enabled by the host, so this needs no wrmsr and no exit. */
long sys_arch_prctl(u64 code, u64 addr, u64 c, u64 d, u64 e, u64 f)
{
	u64 v;

	switch (code) {
	case ARCH_SET_FS:
		__asm__ volatile("wrfsbase %0" : : "r"(addr));
		return 0;
	case ARCH_SET_GS:
		__asm__ volatile("wrgsbase %0" : : "r"(addr));
		return 0;
	case ARCH_GET_FS:
	case ARCH_GET_GS:
		if (!user_ok(addr, 8))
			return -EFAULT;
		if (code == ARCH_GET_FS)
			__asm__ volatile("rdfsbase %0" : "=r"(v));
		else
			__asm__ volatile("rdgsbase %0" : "=r"(v));
		*(u64 *)addr = v;
		return 0;
	}
	return -EINVAL;
}

long sys_gettid(u64 a, u64 b, u64 c, u64 d, u64 e, u64 f) { return CPU->tid; }

long sys_set_tid_address(u64 tidptr, u64 b, u64 c, u64 d, u64 e, u64 f)
{
	CPU->clear_child_tid = tidptr;
	return CPU->tid;
}

#define SIG_BLOCK   0
#define SIG_UNBLOCK 1
#define SIG_SETMASK 2
#define UNBLOCKABLE ((1UL << 8) | (1UL << 18)) /* SIGKILL, SIGSTOP */

long sys_rt_sigprocmask(u64 how, u64 set, u64 oldset, u64 size, u64 e, u64 f)
{
	u64 new;

	if (size != 8)
		return -EINVAL;
	if ((set && !user_ok(set, 8)) || (oldset && !user_ok(oldset, 8)))
		return -EFAULT;
	new = set ? *(u64 *)set : 0;
	if (set && how > SIG_SETMASK)
		return -EINVAL;
	if (oldset)
		*(u64 *)oldset = CPU->sigmask;
	if (!set)
		return 0;
	if (how == SIG_BLOCK)
		new |= CPU->sigmask;
	else if (how == SIG_UNBLOCK)
		new = CPU->sigmask & ~new;
	CPU->sigmask = new & ~UNBLOCKABLE;
	return 0;
}

#define SIG_DFL 0
#define SIG_IGN 1
#define SIGKILL 9
#define SIGSTOP 19
#define ACTIONS ((volatile struct k_sigaction *)SIGACTIONS_ADDR)

/*
 * Dispositions live in a page the host reads when it delivers. Looking one
 * up or installing a handler is served here: python3 does 66 of them at
 * start-up, ~100 us each as exits on kvm_pvm. SIG_DFL and SIG_IGN go to
 * the host, which must then drop what is pending and now ignored.
 */
long sys_rt_sigaction(u64 sig, u64 act, u64 oact, u64 size, u64 e, u64 f)
{
	volatile struct k_sigaction *a;
	struct k_sigaction next;

	if (size != 8 || sig < 1 || sig > 64)
		return -EINVAL;
	if ((act && !user_ok(act, sizeof next)) || (oact && !user_ok(oact, sizeof next)))
		return -EFAULT;
	if (act) {
		next = *(struct k_sigaction *)act;
		if (sig == SIGKILL || sig == SIGSTOP)
			return -EINVAL;
		if (next.handler == SIG_DFL || next.handler == SIG_IGN)
			return hostcall(HC_SYSCALL, 13, sig, act, oact, size, 0, 0);
	}
	a = &ACTIONS[sig - 1];
	if (oact)
		*(struct k_sigaction *)oact = (struct k_sigaction){ a->handler, a->flags, a->restorer, a->mask };
	if (act) {
		a->handler = next.handler;
		a->flags = next.flags & 0xffffffff;
		a->restorer = next.restorer;
		a->mask = next.mask & ~UNBLOCKABLE;
	}
	return 0;
}

/*
 * glibc registers a robust-futex list and an rseq area in every thread at
 * start-up; neither needs the host (each exit costs ~100 us here). The host
 * reads the robust list when the thread exits.
 */
long sys_set_robust_list(u64 head, u64 len, u64 c, u64 d, u64 e, u64 f)
{
	if (len != 24)
		return -EINVAL;
	CPU->robust_list = head;
	return 0;
}

#define RSEQ_MIN_SIZE 32
#define EBUSY 16

long sys_rseq(u64 rseq, u64 len, u64 flags, u64 sig, u64 e, u64 f)
{
	if (flags || len < RSEQ_MIN_SIZE || (rseq & 31))
		return -EINVAL;
	if (CPU->rseq_area)
		return -EBUSY;
	if (!user_ok(rseq, 8))
		return -EFAULT;
	/* A thread never migrates between vCPUs, and no sequence is ever
	 * preempted inside the guest: cpu_id_start and cpu_id stay 0. */
	((u32 *)rseq)[0] = 0;
	((u32 *)rseq)[1] = 0;
	CPU->rseq_area = rseq;
	return 0;
}
