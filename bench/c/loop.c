/* Times COUNT syscalls of one kind and prints nanoseconds per call to stderr
 * (stdout may be the write target). Kinds: getpid (served in the guest),
 * write (1 byte to fd 1, served by the host), signal (tgkill to itself:
 * handler and rt_sigreturn), clock (clock_gettime(CLOCK_MONOTONIC) through
 * libc: the vDSO, no syscall), none (the empty loop). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static volatile long handled;
static void on_signal(int sig) { handled++; (void)sig; }
int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "getpid";
	long n = argc > 2 ? atol(argv[2]) : 100000;
	char c = 'x';
	double t0 = now();
	if (!strcmp(kind, "getpid"))
		for (long i = 0; i < n; i++) syscall(SYS_getpid);
	else if (!strcmp(kind, "write"))
		for (long i = 0; i < n; i++) syscall(SYS_write, 1, &c, 1);
	else if (!strcmp(kind, "signal")) {
		signal(SIGUSR1, on_signal);
		long pid = getpid(), tid = syscall(SYS_gettid);
		t0 = now();
		for (long i = 0; i < n; i++) syscall(SYS_tgkill, pid, tid, SIGUSR1);
	} else if (!strcmp(kind, "clock")) {
		struct timespec t;
		for (long i = 0; i < n; i++) clock_gettime(CLOCK_MONOTONIC, &t);
	} else
		for (volatile long i = 0; i < n; i++) ;
	double t1 = now();
	fprintf(stderr, "%s %.1f ns/call\n", kind, (t1 - t0) / n);
	return 0;
}
