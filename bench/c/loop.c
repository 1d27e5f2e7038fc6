/* Times COUNT syscalls of one kind and prints nanoseconds per call to stderr
 * (stdout may be the write target). Kinds: getpid (served in the guest),
 * write (1 byte to fd 1, served by the host), signal (tgkill to itself:
 * handler and rt_sigreturn), clock (clock_gettime(CLOCK_MONOTONIC) through
 * libc: the vDSO, no syscall), none (the empty loop), and host-served calls
 * on plain fds, 1 byte each: null (write to /dev/null opened), file (COUNT
 * writes to ./loop.dat, then COUNT reads back), pipe and socket (a write
 * then a read through a pipe, or an AF_UNIX socketpair). For file, pipe
 * and socket a call is one read or one write: ns/call is the time over
 * 2 × COUNT.
 *
 *   loop KIND [COUNT]                 e.g. loop getpid 100000
 *   loop KIND:COUNT,KIND:COUNT...     several in one run, a line each
 *
 * Each kind runs WARM times untimed before its timed COUNT. */
#define WARM 1000
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static volatile long handled;
static void on_signal(int sig) { handled++; (void)sig; }
static void check(long r, const char *what)
{
	if (r < 0) {
		perror(what);
		exit(1);
	}
}
/* A write then a read of 1 byte through the pair, n times. */
static void ping(int w, int r, long n)
{
	char c = 'x';
	for (long i = 0; i < n; i++) {
		if (syscall(SYS_write, w, &c, 1) != 1 || syscall(SYS_read, r, &c, 1) != 1) {
			perror("pair");
			exit(1);
		}
	}
}
static void run(const char *kind, long n, int quiet)
{
	long calls = n;
	char c = 'x';
	int p[2];
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
	} else if (!strcmp(kind, "null")) {
		int fd = open("/dev/null", O_WRONLY);
		check(fd, "/dev/null");
		t0 = now();
		for (long i = 0; i < n; i++) syscall(SYS_write, fd, &c, 1);
	} else if (!strcmp(kind, "file")) {
		int fd = open("loop.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
		check(fd, "loop.dat");
		unlink("loop.dat");
		t0 = now();
		for (long i = 0; i < n; i++) syscall(SYS_write, fd, &c, 1);
		lseek(fd, 0, SEEK_SET);
		for (long i = 0; i < n; i++) syscall(SYS_read, fd, &c, 1);
		calls = 2 * n;
	} else if (!strcmp(kind, "pipe")) {
		check(pipe(p), "pipe");
		t0 = now();
		ping(p[1], p[0], n);
		calls = 2 * n;
	} else if (!strcmp(kind, "socket")) {
		check(socketpair(AF_UNIX, SOCK_STREAM, 0, p), "socketpair");
		t0 = now();
		ping(p[0], p[1], n);
		calls = 2 * n;
	} else if (!strcmp(kind, "clock")) {
		struct timespec t;
		t0 = now();
		for (long i = 0; i < n; i++) clock_gettime(CLOCK_MONOTONIC, &t);
	} else
		for (volatile long i = 0; i < n; i++) ;
	double t1 = now();
	if (!quiet)
		fprintf(stderr, "%s %.1f ns/call\n", kind, (t1 - t0) / calls);
}
int main(int argc, char **argv)
{
	char *list = argc > 1 ? argv[1] : "getpid", *save = NULL;
	long n = argc > 2 ? atol(argv[2]) : 100000;
	for (char *k = strtok_r(list, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(k, ':');
		if (colon)
			*colon = 0;
		long count = colon ? atol(colon + 1) : n;
		/* Untimed first: what a runner does once per site or per run
		 * (hermitux rewrites a site at its second call and turns exitless
		 * after 64 host calls) is not a call's cost. */
		run(k, count < WARM ? count : WARM, 1);
		run(k, count, 0);
	}
	return 0;
}
