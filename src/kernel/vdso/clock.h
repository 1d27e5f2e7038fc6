/*
 * The clocks, shared by the guest kernel (time.c) and the vDSO (vdso.c), so
 * a program reads the same time through either. Both compute it from the
 * vvar page at VVAR_ADDR, which the guest kernel writes once at boot (before
 * the program's first instruction, so readers need no lock) and every
 * thread may read. The TSC runs natively at CPL 3, even on kvm_pvm.
 */
#ifndef CLOCK_H
#define CLOCK_H
#include "../abi.h"

#define CLOCK_REALTIME           0
#define CLOCK_MONOTONIC          1
#define CLOCK_PROCESS_CPUTIME_ID 2
#define CLOCK_THREAD_CPUTIME_ID  3
#define CLOCK_MONOTONIC_RAW      4
#define CLOCK_REALTIME_COARSE    5
#define CLOCK_MONOTONIC_COARSE   6
#define CLOCK_BOOTTIME           7

#define NSEC_PER_SEC 1000000000UL

struct vvar {
	unsigned long tsc0;       /* the TSC when the host read its clocks */
	unsigned long tsc_mult;   /* ns = (tsc - tsc0) * tsc_mult >> 32 */
	unsigned long real0;      /* the host's CLOCK_REALTIME at tsc0, ns */
	unsigned long mono0;      /* the host's CLOCK_MONOTONIC at tsc0, ns */
	unsigned long res_fine;   /* the host's clock_getres: high-resolution clocks */
	unsigned long res_coarse; /* and the _COARSE ones, ns */
};

#define VVAR ((const volatile struct vvar *)VVAR_ADDR)

/*
 * lfence first, as Linux's rdtsc_ordered: rdtsc alone may run before earlier
 * loads, so a thread that saw another's later write could read an earlier
 * time. (A syscall trap ordered it before; a vDSO call does not.)
 */
static inline unsigned long clock_rdtsc(void)
{
	unsigned int lo, hi;
	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((unsigned long)hi << 32) | lo;
}

/*
 * The time of clock `id` in ns into *ns; -1 for a clock not kept here (the
 * CPU-time clocks count the host threads' time: the host reads them).
 */
static inline int clock_ns(const volatile struct vvar *v, unsigned long id, unsigned long *ns)
{
	unsigned long d = clock_rdtsc() - v->tsc0;
	unsigned long t = (unsigned long)(((unsigned __int128)d * v->tsc_mult) >> 32);

	switch (id) {
	case CLOCK_REALTIME:
	case CLOCK_REALTIME_COARSE:
		*ns = v->real0 + t;
		return 0;
	case CLOCK_MONOTONIC:
	case CLOCK_MONOTONIC_RAW:
	case CLOCK_MONOTONIC_COARSE:
	case CLOCK_BOOTTIME:
		*ns = v->mono0 + t;
		return 0;
	}
	return -1;
}

/* clock_getres of a clock clock_ns keeps, else -1 (also if the host gave none). */
static inline int clock_res(const volatile struct vvar *v, unsigned long id, unsigned long *ns)
{
	switch (id) {
	case CLOCK_REALTIME:
	case CLOCK_MONOTONIC:
	case CLOCK_MONOTONIC_RAW:
	case CLOCK_BOOTTIME:
		*ns = v->res_fine;
		return *ns ? 0 : -1;
	case CLOCK_REALTIME_COARSE:
	case CLOCK_MONOTONIC_COARSE:
		*ns = v->res_coarse;
		return *ns ? 0 : -1;
	}
	return -1;
}
#endif
