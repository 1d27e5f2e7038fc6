/* Waiting on fds: poll, ppoll, select, pselect, epoll, eventfd, timerfd,
 * preadv/pwritev; timeouts that expire, fds that are ready, bad fds. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "report.h"

static volatile sig_atomic_t alarms;
static void on_alarm(int sig) { alarms++; (void)sig; }

int main(void)
{
	int p[2];
	pipe(p);
	struct pollfd pf[2] = { { p[0], POLLIN, 0 }, { p[1], POLLOUT, 0 } };
	show("poll write end ready", poll(pf, 2, 100));
	printf("revents %x %x\n", pf[0].revents, pf[1].revents);
	show("poll timeout", poll(pf, 1, 30));
	write(p[1], "x", 1);
	show("poll readable", poll(pf, 1, -1));
	printf("revents %x\n", pf[0].revents);
	/* A CI harness may leak fds into the native run; make sure these are bad. */
	close(77);
	close(99);
	struct pollfd bad = { 99, POLLIN, 0 };
	show("poll bad fd", poll(&bad, 1, 0));
	printf("revents %x\n", bad.revents);
	struct timespec ts = { 0, 20000000 };
	pf[0].revents = 0;
	show("ppoll readable", ppoll(pf, 1, &ts, NULL));

	fd_set r, w;
	FD_ZERO(&r);
	FD_ZERO(&w);
	FD_SET(p[0], &r);
	FD_SET(p[1], &w);
	struct timeval tv = { 0, 20000 };
	show("select", select(p[1] + 1, &r, &w, NULL, &tv));
	printf("isset r %d w %d\n", FD_ISSET(p[0], &r), FD_ISSET(p[1], &w));
	char c;
	read(p[0], &c, 1);
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	struct timespec ts2 = { 0, 20000000 };
	show("pselect timeout", pselect(p[0] + 1, &r, NULL, NULL, &ts2, NULL));
	/* select ignores fds past the fd table's size, which a process inherits
	 * from its launcher (64 or more): an fd once held at 200 grows the table
	 * to 256 whatever the launcher, so 77 is inside it and EBADF. */
	dup2(0, 200);
	close(200);
	FD_ZERO(&r);
	FD_SET(77, &r);
	show("select bad fd", select(78, &r, NULL, NULL, &tv));

	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x1234 };
	show("epoll_ctl add", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
	show("epoll_ctl add again", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
	struct epoll_event out[4];
	show("epoll_wait timeout", epoll_wait(ep, out, 4, 20));
	write(p[1], "y", 1);
	show("epoll_wait ready", epoll_wait(ep, out, 4, -1));
	printf("data %llx events %x\n", (unsigned long long)out[0].data.u64, out[0].events);
	show("epoll_ctl del", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));

	read(p[0], &c, 1);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 0 }, { 0, 30000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	struct pollfd q = { p[0], POLLIN, 0 };
	show("poll interrupted", poll(&q, 1, -1));
	printf("handler ran %d\n", alarms);

	int efd = eventfd(3, 0);
	uint64_t v = 0;
	show("eventfd read", read(efd, &v, 8));
	printf("value %llu\n", (unsigned long long)v);
	v = 5;
	write(efd, &v, 8);
	write(efd, &v, 8);
	read(efd, &v, 8);
	printf("summed %llu\n", (unsigned long long)v);

	int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
	struct itimerspec its = { { 0, 0 }, { 0, 10000000 } };
	show("timerfd_settime", timerfd_settime(tfd, 0, &its, NULL));
	uint64_t exp = 0;
	show("timerfd read", read(tfd, &exp, 8));
	printf("expirations %llu\n", (unsigned long long)exp);
	struct itimerspec cur;
	show("timerfd_gettime", timerfd_gettime(tfd, &cur));
	printf("disarmed %d\n", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);

	int fd = open("pv.dat", O_CREAT | O_RDWR | O_TRUNC, 0644);
	struct iovec iov[2] = { { "abc", 3 }, { "def", 3 } };
	show("pwritev", pwritev(fd, iov, 2, 10));
	char a[4] = { 0 }, b[4] = { 0 };
	struct iovec in[2] = { { a, 2 }, { b, 3 } };
	show("preadv", preadv(fd, in, 2, 11));
	printf("got %s %s\n", a, b);
	unlink("pv.dat");
	return 0;
}
