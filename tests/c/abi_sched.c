/* Scheduling policies, priorities, nice values and affinity: first with the
 * capabilities the run starts with (root's: a real-time policy is allowed),
 * then as an unprivileged process (every capability dropped with capset):
 * EPERM to raise a priority, EACCES to lower nice, the RLIMIT_NICE rule for
 * leaving SCHED_IDLE. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "report.h"

#define NOPID (1 << 30) /* past any pid_max */

static long sched_set(pid_t pid, int policy, int prio)
{
	struct sched_param sp = { .sched_priority = prio };
	return syscall(SYS_sched_setscheduler, pid, policy, &sp);
}

static void state(const char *what)
{
	struct sched_param sp = { .sched_priority = -1 };
	long pol = syscall(SYS_sched_getscheduler, 0);
	long r = syscall(SYS_sched_getparam, 0, &sp);
	long prio = syscall(SYS_getpriority, PRIO_PROCESS, 0); /* raw: 20 - nice */
	printf("%s: policy 0x%lx param %ld/%d nice %ld\n", what, pol, r, sp.sched_priority, 20 - prio);
}

static void *other_thread(void *arg)
{
	show("thread setpriority 12", setpriority(PRIO_PROCESS, syscall(SYS_gettid), 12));
	show("thread getpriority raw", syscall(SYS_getpriority, PRIO_PROCESS, 0));
	show("thread SCHED_IDLE", sched_set(0, SCHED_IDLE, 0));
	show("thread leave SCHED_IDLE (RLIMIT_NICE 0)", sched_set(0, SCHED_OTHER, 0));
	state("thread");
	return arg;
}

int main(void)
{
	struct sched_param sp = { 0 };
	struct timespec ts;
	int policies[] = { SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE, 6, 4, 42, -1 };
	for (unsigned i = 0; i < sizeof policies / sizeof *policies; i++) {
		printf("policy %d ", policies[i]);
		show("max", sched_get_priority_max(policies[i]));
		printf("policy %d ", policies[i]);
		show("min", sched_get_priority_min(policies[i]));
	}
	state("start");

	/* Privileged (the run's capabilities): a real-time policy. */
	show("FIFO 10", sched_set(0, SCHED_FIFO, 10));
	state("fifo");
	ts.tv_sec = ts.tv_nsec = -1;
	show("rr_get_interval fifo", syscall(SYS_sched_rr_get_interval, 0, &ts));
	printf("fifo interval %ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
	sp.sched_priority = 20;
	show("setparam 20", syscall(SYS_sched_setparam, 0, &sp));
	show("RR 5", sched_set(getpid(), SCHED_RR, 5));
	show("rr_get_interval rr", syscall(SYS_sched_rr_get_interval, 0, &ts));
	printf("rr interval %ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
	show("back to OTHER", sched_set(0, SCHED_OTHER, 0));
	show("nice -3 (privileged)", setpriority(PRIO_PROCESS, 0, -3));
	state("niced");
	show("nice 0", setpriority(PRIO_PROCESS, 0, 0));

	/* Bad arguments, in Linux's order. */
	show("setscheduler policy 42", sched_set(0, 42, 0));
	show("setscheduler policy -5", sched_set(0, -5, 0));
	show("setscheduler FIFO 0", sched_set(0, SCHED_FIFO, 0));
	show("setscheduler FIFO 100", sched_set(0, SCHED_FIFO, 100));
	show("setscheduler OTHER 5", sched_set(0, SCHED_OTHER, 5));
	show("setscheduler DEADLINE", sched_set(0, 6, 0));
	show("setscheduler NULL", syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, NULL));
	show("setscheduler pid -1", sched_set(-1, SCHED_OTHER, 0));
	show("setscheduler no pid", sched_set(NOPID, SCHED_OTHER, 0));
	show("setscheduler bad param", syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, (void *)8));
	show("getscheduler pid -1", syscall(SYS_sched_getscheduler, -1));
	show("getscheduler no pid", syscall(SYS_sched_getscheduler, NOPID));
	show("getparam NULL", syscall(SYS_sched_getparam, 0, NULL));
	show("getparam no pid", syscall(SYS_sched_getparam, NOPID, &sp));
	show("getparam bad pointer", syscall(SYS_sched_getparam, 0, (void *)8));
	show("rr_get_interval pid -1", syscall(SYS_sched_rr_get_interval, -1, &ts));
	show("rr_get_interval no pid", syscall(SYS_sched_rr_get_interval, NOPID, &ts));
	show("rr_get_interval bad pointer", syscall(SYS_sched_rr_get_interval, 0, (void *)8));
	show("getpriority which 7", syscall(SYS_getpriority, 7, 0));
	show("setpriority which -1", syscall(SYS_setpriority, -1, 0, 0));
	show("getpriority no pid", syscall(SYS_getpriority, PRIO_PROCESS, NOPID));
	show("setpriority no pid", syscall(SYS_setpriority, PRIO_PROCESS, NOPID, 0));

	/* Affinity: the same set, one CPU, none that exists. */
	cpu_set_t all, one, got;
	show("getaffinity", sched_getaffinity(0, sizeof all, &all));
	show("setaffinity same", sched_setaffinity(0, sizeof all, &all));
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	show("setaffinity cpu 0", sched_setaffinity(0, sizeof one, &one));
	CPU_ZERO(&got);
	sched_getaffinity(0, sizeof got, &got);
	printf("now on %d cpus, cpu 0 %d\n", CPU_COUNT(&got), CPU_ISSET(0, &got));
	CPU_ZERO(&one);
	CPU_SET(1000, &one);
	show("setaffinity cpu 1000", sched_setaffinity(0, sizeof one, &one));
	show("setaffinity bad pointer", syscall(SYS_sched_setaffinity, 0, sizeof one, (void *)8));
	show("setaffinity no pid", sched_setaffinity(NOPID, sizeof all, &all));
	show("setaffinity back", sched_setaffinity(0, sizeof all, &all));
	CPU_ZERO(&got);
	sched_getaffinity(0, sizeof got, &got);
	printf("back: same %d\n", CPU_EQUAL(&got, &all));

	/* Unprivileged from here. */
	struct { uint32_t version; int pid; } hdr = { 0x20080522, 0 };
	struct { uint32_t eff, prm, inh; } data[2] = { { 0 } };
	show("drop capabilities", syscall(SYS_capset, &hdr, data));
	show("setpgid own group", setpgid(0, 0));
	show("FIFO 10 unprivileged", sched_set(0, SCHED_FIFO, 10));
	show("RR 1 unprivileged", sched_set(0, SCHED_RR, 1));
	show("BATCH", sched_set(0, SCHED_BATCH, 0));
	state("batch");
	show("OTHER|RESET_ON_FORK", sched_set(0, SCHED_OTHER | SCHED_RESET_ON_FORK, 0));
	state("reset on fork");
	show("clear RESET_ON_FORK", sched_set(0, SCHED_OTHER, 0));
	show("setparam keeps it", syscall(SYS_sched_setparam, 0, &(struct sched_param){ 0 }));
	state("still reset on fork");
	show("setpriority 5", setpriority(PRIO_PROCESS, 0, 5));
	state("nice 5");
	show("setpriority 3 (lower)", setpriority(PRIO_PROCESS, 0, 3));
	show("setpriority 5 again", setpriority(PRIO_PROCESS, getpid(), 5));
	show("setpriority 100 (clamped)", setpriority(PRIO_PROCESS, 0, 100));
	state("nice 19");
	show("getpriority PRIO_PGRP raw", syscall(SYS_getpriority, PRIO_PGRP, 0));
	show("setpriority PRIO_PGRP -1", setpriority(PRIO_PGRP, 0, -1));
	errno = 0;
	int n = nice(1);
	printf("nice(1): %d errno %s\n", n, errno ? ename(errno) : "0");

	pthread_t t;
	pthread_create(&t, NULL, other_thread, NULL);
	pthread_join(t, NULL);
	state("main after thread");
	int pol = -1;
	pthread_getschedparam(pthread_self(), &pol, &sp);
	printf("pthread_getschedparam: policy %d prio %d\n", pol, sp.sched_priority);
	return 0;
}
