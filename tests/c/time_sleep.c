/* Sleeps and clock resolutions: durations, TIMER_ABSTIME, the remaining-time
 * out-param, and the errors of nanosleep, clock_nanosleep and clock_getres.
 * With the argument "long" it sleeps 30 s (for --timeout). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "report.h"

#define MS 1000000LL

static long long ns(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static struct timespec at(long long n)
{
	struct timespec t = { n / 1000000000LL, n % 1000000000LL };
	return t;
}

/* A libc call that returns an errno value (clock_nanosleep). */
static void showe(const char *what, int e)
{
	printf("%s: %s\n", what, e ? ename(e) : "0");
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "long")) {
		printf("sleeping\n");
		fflush(stdout);
		sleep(30);
		printf("woke\n");
		return 0;
	}

	/* nanosleep: a relative sleep on CLOCK_MONOTONIC. */
	struct timespec req = at(20 * MS), rem = { 77, 77 };
	long long t0 = ns(CLOCK_MONOTONIC);
	long r = syscall(SYS_nanosleep, &req, &rem);
	long long t1 = ns(CLOCK_MONOTONIC);
	show("nanosleep 20ms", r);
	printf("nanosleep 20ms elapsed >= 20ms: %d\n", t1 - t0 >= 20 * MS);
	printf("nanosleep rem untouched: %d\n", rem.tv_sec == 77 && rem.tv_nsec == 77);
	req = at(1 * MS);
	show("nanosleep rem NULL", syscall(SYS_nanosleep, &req, NULL));
	show("nanosleep rem bad pointer", syscall(SYS_nanosleep, &req, (void *)8));
	req = at(0);
	show("nanosleep zero", syscall(SYS_nanosleep, &req, NULL));
	show("nanosleep req NULL", syscall(SYS_nanosleep, NULL, NULL));
	show("nanosleep req bad pointer", syscall(SYS_nanosleep, (void *)8, NULL));
	show("nanosleep req at top of memory", syscall(SYS_nanosleep, (void *)-8L, NULL));
	struct timespec bad[] = { { 0, 1000000000 }, { 0, -1 }, { -1, 0 }, { 1, 0x7fffffffffffffffL } };
	for (int i = 0; i < 4; i++) {
		char what[64];
		snprintf(what, sizeof what, "nanosleep invalid timespec %d", i);
		show(what, syscall(SYS_nanosleep, &bad[i], NULL));
	}

	/* libc's sleeps (glibc: clock_nanosleep; musl: nanosleep). */
	t0 = ns(CLOCK_MONOTONIC);
	req = at(10 * MS);
	printf("libc nanosleep: %d\n", nanosleep(&req, &rem));
	printf("libc usleep: %d\n", usleep(10000));
	t1 = ns(CLOCK_MONOTONIC);
	printf("libc sleeps elapsed >= 20ms: %d\n", t1 - t0 >= 20 * MS);
	printf("libc sleep(0): %u\n", sleep(0));

	/* clock_nanosleep, relative, on each clock that sleeps. */
	const clockid_t sleepers[] = { CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME };
	for (int i = 0; i < 3; i++) {
		char what[64];
		req = at(10 * MS);
		rem = (struct timespec){ 77, 77 };
		t0 = ns(CLOCK_MONOTONIC);
		r = syscall(SYS_clock_nanosleep, sleepers[i], 0, &req, &rem);
		t1 = ns(CLOCK_MONOTONIC);
		snprintf(what, sizeof what, "clock_nanosleep(%d) 10ms", sleepers[i]);
		show(what, r);
		printf("clock_nanosleep(%d) elapsed >= 10ms: %d rem untouched: %d\n", sleepers[i],
		       t1 - t0 >= 10 * MS, rem.tv_sec == 77 && rem.tv_nsec == 77);
	}
	req = at(0);
	show("clock_nanosleep(PROCESS_CPUTIME) zero",
	     syscall(SYS_clock_nanosleep, CLOCK_PROCESS_CPUTIME_ID, 0, &req, NULL));

	/* TIMER_ABSTIME: wakes at or after the target on the clock asked for. */
	const clockid_t abs[] = { CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME };
	for (int i = 0; i < 3; i++) {
		long long target = ns(abs[i]) + 15 * MS;
		req = at(target);
		rem = (struct timespec){ 77, 77 };
		int e = clock_nanosleep(abs[i], TIMER_ABSTIME, &req, &rem);
		long long after = ns(abs[i]);
		char what[64];
		snprintf(what, sizeof what, "clock_nanosleep(%d, ABSTIME, now + 15ms)", abs[i]);
		showe(what, e);
		printf("clock_nanosleep(%d, ABSTIME) woke at or after target: %d rem untouched: %d\n",
		       abs[i], after >= target, rem.tv_sec == 77 && rem.tv_nsec == 77);
	}
	req = at(ns(CLOCK_MONOTONIC) - 1000 * MS);
	t0 = ns(CLOCK_MONOTONIC);
	showe("clock_nanosleep ABSTIME in the past", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &req, NULL));
	printf("ABSTIME in the past returns at once (< 500ms): %d\n", ns(CLOCK_MONOTONIC) - t0 < 500 * MS);
	req = at(1);
	showe("clock_nanosleep ABSTIME at 1ns", clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &req, NULL));
	req = at(ns(CLOCK_REALTIME) + MS);
	show("clock_nanosleep ABSTIME with bad rem",
	     syscall(SYS_clock_nanosleep, CLOCK_REALTIME, TIMER_ABSTIME, &req, (void *)8));
	req = at(MS);
	show("clock_nanosleep relative with bad rem",
	     syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &req, (void *)8));
	show("clock_nanosleep unknown flag bits", syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0x7ffffffe, &req, NULL));
	show("clock_nanosleep clock id in the upper half", syscall(SYS_clock_nanosleep, 0x100000001L, 0, &req, NULL));

	/* clock_nanosleep errors, in Linux's order: clock, sleepable clock, pointer, value. */
	const long nosleep[] = { CLOCK_THREAD_CPUTIME_ID, CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE,
				 CLOCK_MONOTONIC_COARSE, 10, 1234, -1, -5 };
	/* -1: a CPU clock of no process (the request is read first); -5: an fd clock. */
	for (int i = 0; i < 8; i++) {
		char what[64];
		snprintf(what, sizeof what, "clock_nanosleep(%ld)", nosleep[i]);
		show(what, syscall(SYS_clock_nanosleep, nosleep[i], 0, &req, NULL));
		snprintf(what, sizeof what, "clock_nanosleep(%ld, NULL req)", nosleep[i]);
		show(what, syscall(SYS_clock_nanosleep, nosleep[i], 0, NULL, NULL));
	}
	show("clock_nanosleep(MONOTONIC, NULL req)", syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, NULL, NULL));
	show("clock_nanosleep(REALTIME, bad req)", syscall(SYS_clock_nanosleep, CLOCK_REALTIME, 0, (void *)8, NULL));
	show("clock_nanosleep(PROCESS_CPUTIME, NULL req)",
	     syscall(SYS_clock_nanosleep, CLOCK_PROCESS_CPUTIME_ID, 0, NULL, NULL));
	for (int i = 0; i < 4; i++) {
		char what[64];
		snprintf(what, sizeof what, "clock_nanosleep invalid timespec %d", i);
		show(what, syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &bad[i], NULL));
		snprintf(what, sizeof what, "clock_nanosleep ABSTIME invalid timespec %d", i);
		show(what, syscall(SYS_clock_nanosleep, CLOCK_REALTIME, TIMER_ABSTIME, &bad[i], NULL));
	}
	showe("libc clock_nanosleep(THREAD_CPUTIME)", clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &req, NULL));

	/* clock_getres. */
	struct timespec res[8];
	for (int c = 0; c < 8; c++) {
		res[c] = (struct timespec){ 77, 77 };
		char what[64];
		snprintf(what, sizeof what, "clock_getres(%d)", c);
		show(what, syscall(SYS_clock_getres, c, &res[c]));
		printf("clock_getres(%d) 0 < res <= 10ms: %d\n", c,
		       res[c].tv_sec == 0 && res[c].tv_nsec > 0 && res[c].tv_nsec <= 10 * MS);
		snprintf(what, sizeof what, "clock_getres(%d, NULL)", c);
		show(what, syscall(SYS_clock_getres, c, NULL));
	}
	printf("coarse resolution >= fine: %d\n",
	       res[CLOCK_MONOTONIC_COARSE].tv_nsec >= res[CLOCK_MONOTONIC].tv_nsec &&
	       res[CLOCK_REALTIME_COARSE].tv_nsec >= res[CLOCK_REALTIME].tv_nsec);
	struct timespec lr;
	printf("libc clock_getres: %d\n", clock_getres(CLOCK_MONOTONIC, &lr));
	printf("libc clock_getres agrees: %d\n", lr.tv_sec == res[1].tv_sec && lr.tv_nsec == res[1].tv_nsec);
	const long badclocks[] = { 10, 1234, -1, -5, 0x7fffffff };
	for (int i = 0; i < 5; i++) {
		char what[64];
		snprintf(what, sizeof what, "clock_getres(%ld)", badclocks[i]);
		show(what, syscall(SYS_clock_getres, badclocks[i], &lr));
		snprintf(what, sizeof what, "clock_getres(%ld, bad pointer)", badclocks[i]);
		show(what, syscall(SYS_clock_getres, badclocks[i], (void *)8));
	}
	show("clock_getres(MONOTONIC, bad pointer)", syscall(SYS_clock_getres, CLOCK_MONOTONIC, (void *)8));
	show("clock_getres clock id in the upper half", syscall(SYS_clock_getres, 0x100000001L, &lr));
	return 0;
}
