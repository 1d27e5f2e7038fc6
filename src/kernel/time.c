/*
 * Clocks from rdtsc, which runs natively at CPL 3 even on kvm_pvm. The host
 * gives the TSC frequency as a 32.32 multiplier and, once at boot, its
 * clocks; we pair them with the TSC read around that host call.
 */
#include "kernel.h"

#define CLOCK_REALTIME           0
#define CLOCK_MONOTONIC          1
#define CLOCK_PROCESS_CPUTIME_ID 2
#define CLOCK_THREAD_CPUTIME_ID  3
#define CLOCK_MONOTONIC_RAW      4
#define CLOCK_REALTIME_COARSE    5
#define CLOCK_MONOTONIC_COARSE   6
#define CLOCK_BOOTTIME           7

static u64 tsc0, real0, mono0;

static u64 ns_since_boot(void)
{
	return (u64)(((unsigned __int128)(rdtsc() - tsc0) * BOOT->tsc_mult) >> 32);
}

void time_init(void)
{
	volatile struct hostcall *hc = (struct hostcall *)HOSTCALL_ADDR;
	u64 before = rdtsc();

	real0 = hostcall(HC_CLOCK, 0, 0, 0, 0, 0, 0, 0);
	mono0 = hc->arg[0];
	/*
	 * Pair the host's reading with the TSC from before the call: the host
	 * read its clocks later than that, so the guest's clocks are never
	 * behind the host's (a guest sleeping until a host deadline then
	 * reads at least that deadline), at most one exit ahead.
	 */
	tsc0 = before;
}

static long clock_ns(u64 id, u64 *ns)
{
	switch (id) {
	case CLOCK_REALTIME:
	case CLOCK_REALTIME_COARSE:
		*ns = real0 + ns_since_boot();
		return 0;
	case CLOCK_MONOTONIC:
	case CLOCK_MONOTONIC_RAW:
	case CLOCK_MONOTONIC_COARSE:
	case CLOCK_BOOTTIME:
		*ns = mono0 + ns_since_boot();
		return 0;
	}
	return -EINVAL;
}

long sys_clock_gettime(u64 id, u64 tp, u64 c, u64 d, u64 e, u64 f)
{
	u64 ns;
	long r;

	/*
	 * CPU-time clocks (the process's, the thread's, and the ids made by
	 * clock_getcpuclockid and pthread_getcpuclockid, negative) count the
	 * CPU time of the host threads that run the vCPUs: the host reads them.
	 */
	if (id == CLOCK_PROCESS_CPUTIME_ID || id == CLOCK_THREAD_CPUTIME_ID || (int)id < 0)
		return hostcall(HC_SYSCALL, 228, id, tp, 0, 0, 0, 0); /* clock_gettime */
	r = clock_ns(id, &ns);

	if (r)
		return r;
	if (!user_ok(tp, 16))
		return -EFAULT;
	((u64 *)tp)[0] = ns / 1000000000;
	((u64 *)tp)[1] = ns % 1000000000;
	return 0;
}

long sys_gettimeofday(u64 tv, u64 tz, u64 c, u64 d, u64 e, u64 f)
{
	u64 ns;

	clock_ns(CLOCK_REALTIME, &ns);
	if (tv) {
		if (!user_ok(tv, 16))
			return -EFAULT;
		((u64 *)tv)[0] = ns / 1000000000;
		((u64 *)tv)[1] = ns % 1000000000 / 1000;
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

	clock_ns(CLOCK_REALTIME, &ns);
	if (tloc) {
		if (!user_ok(tloc, 8))
			return -EFAULT;
		*(u64 *)tloc = ns / 1000000000;
	}
	return ns / 1000000000;
}
