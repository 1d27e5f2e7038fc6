/*
 * Clocks from rdtsc, which runs natively at CPL 3 even on kvm_pvm. The host
 * gives the TSC frequency as a 32.32 multiplier and, once at boot, its
 * clocks; we pair them with the TSC read around that host call. The base
 * goes to the vvar page, where the vDSO reads it too (vdso/clock.h), so
 * programs mostly read the clocks without a syscall at all.
 */
#include "kernel.h"
#include "vdso/clock.h"

void time_init(void)
{
	volatile struct hostcall *hc = (struct hostcall *)HOSTCALL_ADDR;
	volatile struct vvar *v = (volatile struct vvar *)VVAR_ADDR;
	u64 before = clock_rdtsc();

	v->real0 = hostcall(HC_CLOCK, 0, 0, 0, 0, 0, 0, 0);
	v->mono0 = hc->arg[0];
	v->res_fine = hc->arg[1];
	v->res_coarse = hc->arg[2];
	v->tsc_mult = BOOT->tsc_mult;
	/*
	 * Pair the host's reading with the TSC from before the call: the host
	 * read its clocks later than that, so the guest's clocks are never
	 * behind the host's (a guest sleeping until a host deadline then
	 * reads at least that deadline), at most one exit ahead.
	 */
	v->tsc0 = before;
}

long sys_clock_gettime(u64 id, u64 tp, u64 c, u64 d, u64 e, u64 f)
{
	u64 ns;

	/*
	 * CPU-time clocks (the process's, the thread's, and the ids made by
	 * clock_getcpuclockid and pthread_getcpuclockid, negative) count the
	 * CPU time of the host threads that run the vCPUs: the host reads them.
	 */
	if (id == CLOCK_PROCESS_CPUTIME_ID || id == CLOCK_THREAD_CPUTIME_ID || (int)id < 0)
		return hostcall(HC_SYSCALL, 228, id, tp, 0, 0, 0, 0); /* clock_gettime */
	if (clock_ns(VVAR, id, &ns))
		return -EINVAL;
	if (!user_ok(tp, 16))
		return -EFAULT;
	((u64 *)tp)[0] = ns / NSEC_PER_SEC;
	((u64 *)tp)[1] = ns % NSEC_PER_SEC;
	return 0;
}

long sys_gettimeofday(u64 tv, u64 tz, u64 c, u64 d, u64 e, u64 f)
{
	u64 ns;

	clock_ns(VVAR, CLOCK_REALTIME, &ns);
	if (tv) {
		if (!user_ok(tv, 16))
			return -EFAULT;
		((u64 *)tv)[0] = ns / NSEC_PER_SEC;
		((u64 *)tv)[1] = ns % NSEC_PER_SEC / 1000;
	}
	if (tz) {
		if (!user_ok(tz, 8))
			return -EFAULT;
		((u32 *)tz)[0] = 0;
		((u32 *)tz)[1] = 0;
	}
	return 0;
}

long sys_time(u64 tloc, u64 b, u64 c, u64 d, u64 e, u64 f)
{
	u64 ns;

	clock_ns(VVAR, CLOCK_REALTIME, &ns);
	if (tloc) {
		if (!user_ok(tloc, 8))
			return -EFAULT;
		*(u64 *)tloc = ns / NSEC_PER_SEC;
	}
	return ns / NSEC_PER_SEC;
}
