/* CPU-time clocks count CPU time, not sleep: CLOCK_PROCESS_CPUTIME_ID,
 * CLOCK_THREAD_CPUTIME_ID, pthread_getcpuclockid and clock_getcpuclockid
 * ids, their resolution and errors. Comparisons only, never durations: a
 * loaded machine stretches wall time, not CPU time. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "report.h"

static long long ns(clockid_t c)
{
	struct timespec ts;
	if (clock_gettime(c, &ts))
		return -1;
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static volatile uint64_t sink;

/* Work with no syscall in it, until `c` has advanced by `want` ns. */
static long long spin(clockid_t c, long long want)
{
	long long start = ns(c), now;
	do {
		for (int i = 0; i < 1000000; i++)
			sink += i;
	} while ((now = ns(c)) - start < want);
	return now - start;
}

static volatile int vtalrm, prof;

static void on_timer(int sig)
{
	if (sig == SIGVTALRM)
		vtalrm++;
	else
		prof++;
}

/* ITIMER_VIRTUAL and ITIMER_PROF fire on CPU time, not while sleeping. */
static void itimers(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_timer;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGVTALRM, &sa, NULL);
	sigaction(SIGPROF, &sa, NULL);
	struct itimerval it = { { 0, 0 }, { 0, 20000 } }, old, now;
	show("setitimer VIRTUAL 20 ms", setitimer(ITIMER_VIRTUAL, &it, NULL));
	show("getitimer VIRTUAL", getitimer(ITIMER_VIRTUAL, &now));
	long us = now.it_value.tv_sec * 1000000 + now.it_value.tv_usec;
	/* Linux adds a tick (at most 10 ms) to the value. */
	printf("  0 < left <= 30 ms: %d, interval %ld\n", us > 0 && us <= 30000,
	       (long)now.it_interval.tv_usec);
	struct timespec nap = { 0, 100000000 };
	nanosleep(&nap, NULL);
	printf("after a 100 ms sleep: fired %d\n", vtalrm);
	long long start = ns(CLOCK_PROCESS_CPUTIME_ID);
	while (!vtalrm && ns(CLOCK_PROCESS_CPUTIME_ID) - start < 5000000000LL)
		for (int i = 0; i < 100000; i++)
			sink += i;
	printf("after spinning: fired %d\n", vtalrm);
	show("getitimer VIRTUAL, expired", getitimer(ITIMER_VIRTUAL, &now));
	printf("  disarmed %d\n", now.it_value.tv_sec == 0 && now.it_value.tv_usec == 0);

	it = (struct itimerval){ { 0, 10000 }, { 0, 10000 } };
	show("setitimer PROF every 10 ms", setitimer(ITIMER_PROF, &it, NULL));
	spin(CLOCK_PROCESS_CPUTIME_ID, 100000000);
	it = (struct itimerval){ { 0, 0 }, { 0, 0 } };
	show("setitimer PROF off", setitimer(ITIMER_PROF, &it, &old));
	printf("  old interval %ld us, fired at least 3 times in 100 ms of CPU: %d\n",
	       (long)old.it_interval.tv_usec, prof >= 3);
	show("setitimer which 3", setitimer(3, &it, NULL));
	it.it_value.tv_usec = 1000000;
	show("setitimer usec 1e6", setitimer(ITIMER_VIRTUAL, &it, NULL));
}

static long long worker_used;
static clockid_t worker_clock;

static void *worker(void *arg)
{
	pthread_getcpuclockid(pthread_self(), &worker_clock);
	worker_used = spin(CLOCK_THREAD_CPUTIME_ID, 50000000);
	return arg;
}

int main(void)
{
	long long p0 = ns(CLOCK_PROCESS_CPUTIME_ID), t0 = ns(CLOCK_THREAD_CPUTIME_ID);
	long long w0 = ns(CLOCK_MONOTONIC);
	printf("process and thread clocks read: %d %d\n", p0 >= 0, t0 >= 0);
	struct timespec nap = { 0, 200000000 };
	nanosleep(&nap, NULL);
	long long slept = ns(CLOCK_MONOTONIC) - w0;
	long long pcpu = ns(CLOCK_PROCESS_CPUTIME_ID) - p0, tcpu = ns(CLOCK_THREAD_CPUTIME_ID) - t0;
	printf("a 200 ms sleep: slept >= 200 ms %d, process CPU < half of it %d, thread CPU < half %d\n",
	       slept >= 200000000, pcpu < slept / 2, tcpu < slept / 2);

	/* Work counts: 50 ms of CPU, never more CPU than wall time. */
	w0 = ns(CLOCK_MONOTONIC);
	long long used = spin(CLOCK_PROCESS_CPUTIME_ID, 50000000);
	long long wall = ns(CLOCK_MONOTONIC) - w0;
	printf("spun to 50 ms of CPU: %d, wall >= CPU %d\n", used >= 50000000, wall >= used - 2000000);

	/* pthread_getcpuclockid and clock_getcpuclockid. */
	clockid_t own, proc, self;
	show("pthread_getcpuclockid", pthread_getcpuclockid(pthread_self(), &own));
	show("clock_getcpuclockid(0)", clock_getcpuclockid(0, &proc));
	show("clock_getcpuclockid(getpid())", clock_getcpuclockid(getpid(), &self));
	printf("own thread clock reads %d, process %d, by pid %d\n", ns(own) >= 0, ns(proc) >= 0,
	       ns(self) >= 0);
	long long a = ns(CLOCK_THREAD_CPUTIME_ID), b = ns(own), c = ns(CLOCK_THREAD_CPUTIME_ID);
	printf("thread clock by id between two reads: %d\n", a <= b && b <= c);

	/* Another thread's clock: its work is its own. */
	long long main0 = ns(CLOCK_THREAD_CPUTIME_ID), proc0 = ns(CLOCK_PROCESS_CPUTIME_ID);
	pthread_t t;
	pthread_create(&t, NULL, worker, NULL);
	pthread_join(t, NULL);
	long long main_used = ns(CLOCK_THREAD_CPUTIME_ID) - main0;
	long long proc_used = ns(CLOCK_PROCESS_CPUTIME_ID) - proc0;
	printf("worker spun 50 ms of its CPU: %d; main thread used less than it %d; process "
	       "counted it %d\n", worker_used >= 50000000, main_used < worker_used,
	       proc_used >= worker_used);
	struct timespec ts;
	show("clock of the joined thread", clock_gettime(worker_clock, &ts));

	itimers();

	/* Resolution and bad ids. */
	struct timespec res = { -1, -1 };
	show("clock_getres PROCESS_CPUTIME", clock_getres(CLOCK_PROCESS_CPUTIME_ID, &res));
	printf("  %ld.%09ld\n", (long)res.tv_sec, res.tv_nsec);
	res.tv_nsec = -1;
	show("clock_getres thread clock id", clock_getres(own, &res));
	printf("  %ld.%09ld\n", (long)res.tv_sec, res.tv_nsec);
	show("clock_getres THREAD_CPUTIME NULL", clock_getres(CLOCK_THREAD_CPUTIME_ID, NULL));
	clockid_t bad = (clockid_t)((~0x3fffff0u << 3) | 6); /* a tid past PID_MAX_LIMIT */
	show("clock_gettime of no thread", syscall(SYS_clock_gettime, bad, &ts));
	show("clock_getres of no thread", syscall(SYS_clock_getres, bad, &ts));
	show("clock_gettime which 3", syscall(SYS_clock_gettime, (clockid_t)(~0u << 3) | 3, &ts));
	show("clock_gettime bad pointer", syscall(SYS_clock_gettime, CLOCK_PROCESS_CPUTIME_ID, 8));
	show("clock_gettime thread bad pointer", syscall(SYS_clock_gettime, own, 8));
	/* Setting: never with a valid time for CLOCK_REALTIME (the run may be root's). */
	ts = (struct timespec){ 1, 0 };
	show("clock_settime PROCESS_CPUTIME", clock_settime(CLOCK_PROCESS_CPUTIME_ID, &ts));
	show("clock_settime thread clock", clock_settime(own, &ts));
	show("clock_settime no thread", syscall(SYS_clock_settime, bad, &ts));
	show("clock_settime MONOTONIC", clock_settime(CLOCK_MONOTONIC, &ts));
	show("clock_settime BOOTTIME", clock_settime(CLOCK_BOOTTIME, &ts));
	show("clock_settime 42", clock_settime(42, &ts));
	show("clock_settime REALTIME NULL", syscall(SYS_clock_settime, CLOCK_REALTIME, NULL));
	struct timespec wrong = { 0, 1000000000 };
	show("clock_settime REALTIME bad nsec", clock_settime(CLOCK_REALTIME, &wrong));
	wrong = (struct timespec){ -1, 0 };
	show("clock_settime REALTIME negative", clock_settime(CLOCK_REALTIME, &wrong));
	return 0;
}
