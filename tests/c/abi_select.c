/* select/pselect6/ppoll: the timeout written back with the time left (0
 * after a full timeout, untouched for a zero one), and fds past the fd
 * table's size ignored (an unopened fd below it is EBADF). Raw syscalls, so
 * every libc sees the same (musl's select passes a copy of the timeval). */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "report.h"

static long sel(int nfds, fd_set *r, struct timeval *tv)
{
	return syscall(SYS_select, nfds, r, NULL, NULL, tv);
}

static void only(fd_set *s, int fd)
{
	FD_ZERO(s);
	FD_SET(fd, s);
}

static void table_size(void)
{
	fd_set r;
	struct timeval tv;
	for (int fd = 3; fd < 64; fd++)
		close(fd);
	tv = (struct timeval){ 0, 0 };
	only(&r, 900);
	show("select fd 900 only", sel(901, &r, &tv));
	printf("  fd 900 still set %d\n", FD_ISSET(900, &r));
	only(&r, 50);
	show("select fd 50 (not open, inside the table)", sel(51, &r, &tv));
	only(&r, 100);
	show("select fd 100 (past the table)", sel(101, &r, &tv));
	show("dup2 to fd 100", dup2(1, 100));
	only(&r, 120);
	show("select fd 120 (table grown to 128)", sel(121, &r, &tv));
	only(&r, 200);
	show("select fd 200 (past it)", sel(201, &r, &tv));
	close(100);
	show("select nfds -1", sel(-1, &r, &tv));
}

static void on_alarm(int sig)
{
	(void)sig;
}

int main(void)
{
	int p[2];
	fd_set r;
	struct timeval tv;
	struct timespec ts;
	pipe(p);

	only(&r, p[0]);
	tv = (struct timeval){ 0, 30000 };
	show("select, nothing ready, 30 ms", sel(p[0] + 1, &r, &tv));
	printf("  left %ld.%06ld, set %d\n", (long)tv.tv_sec, (long)tv.tv_usec, FD_ISSET(p[0], &r));

	write(p[1], "x", 1);
	only(&r, p[0]);
	tv = (struct timeval){ 5, 0 };
	show("select, readable, 5 s", sel(p[0] + 1, &r, &tv));
	long us = tv.tv_sec * 1000000 + tv.tv_usec;
	printf("  0 < left < 5 s: %d, set %d\n", us > 0 && us < 5000000, FD_ISSET(p[0], &r));

	only(&r, p[0]);
	tv = (struct timeval){ 0, 0 };
	show("select, zero timeout", sel(p[0] + 1, &r, &tv));
	printf("  left %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);

	tv = (struct timeval){ 0, 2500000 }; /* usec past a second: normalised */
	only(&r, p[1]);
	show("select, writable, 2.5 s in usec", sel(p[1] + 1, &r, &tv));
	us = tv.tv_sec * 1000000 + tv.tv_usec;
	printf("  0 < left <= 2.5 s: %d\n", us > 0 && us <= 2500000);

	tv = (struct timeval){ -1, 0 };
	show("select, negative timeout", sel(p[0] + 1, &r, &tv));
	tv = (struct timeval){ 0, -1 };
	show("select, negative usec", sel(p[0] + 1, &r, &tv));

	/* A forked child's fd table has room for 64 fds (the launcher's, which
	 * exec keeps, may be larger): past it, fds are ignored. */
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		table_size();
		fflush(stdout);
		_exit(0);
	}
	waitpid(child, NULL, 0);

	/* pselect6 and ppoll update their timespec too. */
	char c;
	read(p[0], &c, 1);
	only(&r, p[0]);
	ts = (struct timespec){ 0, 20000000 };
	show("pselect6, 20 ms", syscall(SYS_pselect6, p[0] + 1, &r, NULL, NULL, &ts, NULL));
	printf("  left %ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
	ts = (struct timespec){ 0, 1000000000 };
	show("pselect6 nsec 1e9", syscall(SYS_pselect6, p[0] + 1, &r, NULL, NULL, &ts, NULL));
	struct pollfd pfd = { p[0], POLLIN, 0 };
	ts = (struct timespec){ 0, 20000000 };
	show("ppoll, 20 ms", syscall(SYS_ppoll, &pfd, 1, &ts, NULL, 8));
	printf("  left %ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
	write(p[1], "y", 1);
	ts = (struct timespec){ 7, 0 };
	show("ppoll, readable, 7 s", syscall(SYS_ppoll, &pfd, 1, &ts, NULL, 8));
	long ns = ts.tv_sec * 1000000000L + ts.tv_nsec;
	printf("  0 < left < 7 s: %d\n", ns > 0 && ns < 7000000000L);
	read(p[0], &c, 1);

	/* Interrupted: EINTR, with the time left written back. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 0 }, { 0, 50000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	only(&r, p[0]);
	tv = (struct timeval){ 30, 0 };
	show("select interrupted", sel(p[0] + 1, &r, &tv));
	us = tv.tv_sec * 1000000 + tv.tv_usec;
	printf("  0 < left < 30 s: %d\n", us > 0 && us < 30000000);

	/* The libc wrapper: glibc's select goes through pselect6 and copies the
	 * time left back; musl's passes a copy (so the timeval stays). */
	only(&r, p[0]);
	tv = (struct timeval){ 0, 10000 };
	show("libc select, 10 ms", select(p[0] + 1, &r, NULL, NULL, &tv));
	return 0;
}
