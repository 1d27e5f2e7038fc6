/* CPU time and system information: times, getrusage, sysinfo,
 * sched_getaffinity, sched_yield and getcpu, with their errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include "report.h"

/* 100 ms of CPU time (at most 5 s of wall time): on a loaded machine 100 ms
 * of wall time may hold less than one 10 ms tick of CPU. */
static void burn(void)
{
	struct timespec a, b, w0, w;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
	clock_gettime(CLOCK_MONOTONIC, &w0);
	volatile unsigned long x = 0;
	do {
		for (int i = 0; i < 100000; i++)
			x += i;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
		clock_gettime(CLOCK_MONOTONIC, &w);
	} while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 100000000L &&
		 w.tv_sec - w0.tv_sec < 5);
}

int main(void)
{
	/* times */
	burn();
	struct tms t;
	memset(&t, 0xff, sizeof t);
	clock_t c0 = times(&t);
	printf("times() ticks non-negative: %d\n", c0 != (clock_t)-1 && c0 >= 0);
	printf("times() fields non-negative: %d\n",
	       t.tms_utime >= 0 && t.tms_stime >= 0 && t.tms_cutime >= 0 && t.tms_cstime >= 0);
	printf("times() cpu after a 100ms busy loop > 0: %d\n", t.tms_utime + t.tms_stime > 0);
	long raw = syscall(SYS_times, NULL);
	printf("times(NULL) non-negative: %d\n", raw >= 0);
	struct timespec ms40 = { 0, 40000000 };
	nanosleep(&ms40, NULL);
	clock_t c1 = times(NULL);
	printf("times() advances across a 40ms sleep: %d\n", c1 > c0);
	printf("times() advance is under 10 s: %d\n", c1 - c0 < 1000);
	show("times(bad pointer)", syscall(SYS_times, (void *)8));

	/* getrusage */
	struct rusage ru;
	memset(&ru, 0xff, sizeof ru);
	show("getrusage(SELF)", syscall(SYS_getrusage, RUSAGE_SELF, &ru));
	printf("getrusage(SELF) utime sane: %d maxrss positive: %d cpu > 0: %d\n",
	       ru.ru_utime.tv_sec >= 0 && ru.ru_utime.tv_usec >= 0 && ru.ru_utime.tv_usec < 1000000,
	       ru.ru_maxrss > 0, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec > 0);
	memset(&ru, 0xff, sizeof ru);
	show("getrusage(CHILDREN)", syscall(SYS_getrusage, RUSAGE_CHILDREN, &ru));
	printf("getrusage(CHILDREN) written: %d\n", ru.ru_utime.tv_usec >= 0 && ru.ru_utime.tv_usec < 1000000);
	memset(&ru, 0xff, sizeof ru);
	show("getrusage(THREAD)", syscall(SYS_getrusage, RUSAGE_THREAD, &ru));
	printf("getrusage(THREAD) written: %d\n", ru.ru_utime.tv_usec >= 0 && ru.ru_utime.tv_usec < 1000000);
	printf("libc getrusage: %d\n", getrusage(RUSAGE_SELF, &ru));
	show("getrusage(who upper half)", syscall(SYS_getrusage, 0x100000000L, &ru));
	const long badwho[] = { 2, -2, 1234 };
	for (int i = 0; i < 3; i++) {
		char what[64];
		snprintf(what, sizeof what, "getrusage(%ld)", badwho[i]);
		show(what, syscall(SYS_getrusage, badwho[i], &ru));
		snprintf(what, sizeof what, "getrusage(%ld, NULL)", badwho[i]);
		show(what, syscall(SYS_getrusage, badwho[i], NULL));
	}
	show("getrusage(SELF, NULL)", syscall(SYS_getrusage, RUSAGE_SELF, NULL));
	show("getrusage(CHILDREN, bad pointer)", syscall(SYS_getrusage, RUSAGE_CHILDREN, (void *)8));

	/* sysinfo */
	struct sysinfo si;
	memset(&si, 0, sizeof si);
	show("sysinfo", syscall(SYS_sysinfo, &si));
	printf("sysinfo uptime > 0: %d totalram > 0: %d freeram <= totalram: %d mem_unit >= 1: %d procs > 0: %d\n",
	       si.uptime > 0, si.totalram > 0, si.freeram <= si.totalram, si.mem_unit >= 1, si.procs > 0);
	printf("libc sysinfo: %d\n", sysinfo(&si));
	show("sysinfo(NULL)", syscall(SYS_sysinfo, NULL));
	show("sysinfo(bad pointer)", syscall(SYS_sysinfo, (void *)-16L));

	/* sched_getaffinity */
	unsigned char mask[1024], mask2[1024];
	memset(mask, 0xa5, sizeof mask);
	long n = syscall(SYS_sched_getaffinity, 0, 128, mask);
	printf("sched_getaffinity bytes positive: %d multiple of 8: %d at most 128: %d\n", n > 0, n % 8 == 0, n <= 128);
	int rest = 1, some = 0;
	for (int i = 0; i < (int)sizeof mask; i++) {
		if (i >= n && mask[i] != 0xa5)
			rest = 0;
		if (i < n && mask[i])
			some = 1;
	}
	printf("sched_getaffinity writes only its bytes: %d some cpu set: %d\n", rest, some);
	memset(mask2, 0, sizeof mask2);
	long n2 = syscall(SYS_sched_getaffinity, getpid(), 128, mask2);
	printf("sched_getaffinity(own pid) same as pid 0: %d\n", n2 == n && !memcmp(mask, mask2, n));
	n2 = syscall(SYS_sched_getaffinity, getpid() + 0x100000000L, 0x100000000L + 128, mask2);
	printf("sched_getaffinity args' upper halves ignored: %d\n", n2 == n);
	n2 = syscall(SYS_sched_getaffinity, 0, 0xfffffff8L, mask2);
	printf("sched_getaffinity huge len returns the kernel's size: %d\n", n2 > 0 && n2 % 8 == 0 && n2 <= 1024);
	cpu_set_t set;
	CPU_ZERO(&set);
	int lr = sched_getaffinity(0, sizeof set, &set);
	printf("libc sched_getaffinity: %d count >= 1: %d\n", lr, CPU_COUNT(&set) >= 1);
	const long badlen[] = { 0, 4, 12, 129 };
	for (int i = 0; i < 4; i++) {
		char what[64];
		snprintf(what, sizeof what, "sched_getaffinity(len %ld)", badlen[i]);
		show(what, syscall(SYS_sched_getaffinity, 0, badlen[i], mask2));
	}
	show("sched_getaffinity(NULL)", syscall(SYS_sched_getaffinity, 0, 128, NULL));
	show("sched_getaffinity(bad pointer)", syscall(SYS_sched_getaffinity, 0, 128, (void *)8));
	show("sched_getaffinity(no such pid)", syscall(SYS_sched_getaffinity, 0x7ffffffe, 128, mask2));
	show("sched_getaffinity(pid -1)", syscall(SYS_sched_getaffinity, -1, 128, mask2));
	show("sched_getaffinity(no such pid, len 4)", syscall(SYS_sched_getaffinity, 0x7ffffffe, 4, mask2));
	show("sched_getaffinity(no such pid, NULL)", syscall(SYS_sched_getaffinity, 0x7ffffffe, 128, NULL));

	/* sched_yield, getcpu */
	show("sched_yield", syscall(SYS_sched_yield));
	printf("libc sched_yield: %d\n", sched_yield());
	unsigned cpu = 0xdead, node = 0xdead;
	show("getcpu", syscall(SYS_getcpu, &cpu, &node, NULL));
	printf("getcpu cpu < 1024: %d node < 1024: %d\n", cpu < 1024, node < 1024);
	printf("libc sched_getcpu >= 0: %d\n", sched_getcpu() >= 0);
	show("getcpu(NULL, NULL)", syscall(SYS_getcpu, NULL, NULL, NULL));
	cpu = 0xdead;
	show("getcpu(&cpu, NULL)", syscall(SYS_getcpu, &cpu, NULL, NULL));
	printf("getcpu cpu written: %d\n", cpu != 0xdead);
	node = 0xdead;
	show("getcpu(NULL, &node)", syscall(SYS_getcpu, NULL, &node, NULL));
	printf("getcpu node written: %d\n", node != 0xdead);
	node = 0xdead;
	show("getcpu(bad, &node)", syscall(SYS_getcpu, (void *)8, &node, NULL));
	printf("getcpu node written despite a bad cpu pointer: %d\n", node != 0xdead);
	cpu = 0xdead;
	show("getcpu(&cpu, bad)", syscall(SYS_getcpu, &cpu, (void *)8, NULL));
	printf("getcpu cpu written despite a bad node pointer: %d\n", cpu != 0xdead);
	show("getcpu(&cpu, &node, bad cache)", syscall(SYS_getcpu, &cpu, &node, (void *)8));
	return 0;
}
