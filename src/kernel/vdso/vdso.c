/*
 * The vDSO: clock_gettime, gettimeofday, time, getcpu and clock_getres as
 * plain calls, the way Linux's x86-64 vDSO offers them (symbols
 * __vdso_<name> and <name>, version LINUX_2.6, which glibc and musl look
 * up). A syscall trap costs 13-30 us on kvm_pvm; these cost a rdtsc.
 * Clocks the guest kernel does not keep (the CPU-time ones, unknown ids)
 * make the real syscall, as Linux's vDSO does. Position-independent, no
 * relocations: the host copies it to any page-aligned address.
 */
#include "clock.h"

struct timespec { long tv_sec, tv_nsec; };
struct timeval { long tv_sec, tv_usec; };
struct timezone { int tz_minuteswest, tz_dsttime; };

#define NR_gettimeofday  96
#define NR_time          201
#define NR_clock_gettime 228
#define NR_clock_getres  229

static long syscall2(long nr, long a, long b)
{
	long r;

	__asm__ volatile("syscall" : "=a"(r) : "0"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
	return r;
}

int __vdso_clock_gettime(int id, struct timespec *ts)
{
	unsigned long ns;

	if (clock_ns(VVAR, (unsigned int)id, &ns))
		return syscall2(NR_clock_gettime, id, (long)ts);
	ts->tv_sec = ns / NSEC_PER_SEC;
	ts->tv_nsec = ns % NSEC_PER_SEC;
	return 0;
}

int __vdso_gettimeofday(struct timeval *tv, struct timezone *tz)
{
	unsigned long ns;

	clock_ns(VVAR, CLOCK_REALTIME, &ns);
	if (tv) {
		tv->tv_sec = ns / NSEC_PER_SEC;
		tv->tv_usec = ns % NSEC_PER_SEC / 1000;
	}
	if (tz) {
		tz->tz_minuteswest = 0;
		tz->tz_dsttime = 0;
	}
	return 0;
}

long __vdso_time(long *t)
{
	unsigned long ns;

	clock_ns(VVAR, CLOCK_REALTIME, &ns);
	if (t)
		*t = ns / NSEC_PER_SEC;
	return ns / NSEC_PER_SEC;
}

/* A thread never migrates between vCPUs, and the host reports CPU 0 of node 0 (time.ts). */
long __vdso_getcpu(unsigned int *cpu, unsigned int *node, void *unused)
{
	if (cpu)
		*cpu = 0;
	if (node)
		*node = 0;
	return 0;
}

int __vdso_clock_getres(int id, struct timespec *res)
{
	unsigned long ns;

	if (clock_res(VVAR, (unsigned int)id, &ns))
		return syscall2(NR_clock_getres, id, (long)res);
	if (res) {
		res->tv_sec = 0;
		res->tv_nsec = ns;
	}
	return 0;
}

/* The unprefixed names Linux's vDSO also exports. */
int clock_gettime(int, struct timespec *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct timeval *, struct timezone *)
	__attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) __attribute__((weak, alias("__vdso_time")));
long getcpu(unsigned int *, unsigned int *, void *) __attribute__((weak, alias("__vdso_getcpu")));
int clock_getres(int, struct timespec *) __attribute__((weak, alias("__vdso_clock_getres")));
