/* A write larger than a pipe holds: it returns once a reader (another
 * thread) has taken everything, 256 KiB through write and through writev
 * with three buffers, bytes in order; a socket pair the same. A signal
 * that comes after part of a write ends it with the bytes written so far
 * (a pipe holds 64 KiB), and before any with EINTR. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>
#include "report.h"

#define BIG (1 << 18) /* 4 times what a pipe holds */
static unsigned char data[BIG];

struct reader { int fd; long got, bad; };

static void *drain(void *arg)
{
	struct reader *r = arg;
	unsigned char buf[3000]; /* not a divisor of anything above */
	long n;
	while ((n = read(r->fd, buf, sizeof buf)) > 0) {
		for (long i = 0; i < n; i++)
			r->bad += buf[i] != data[(r->got + i) % BIG];
		r->got += n;
		if (r->got % 64 == 0)
			usleep(100); /* now and then slow: the writer waits */
	}
	return NULL;
}

static void through(const char *what, int rfd, int wfd, int vectored)
{
	struct reader r = { rfd, 0, 0 };
	pthread_t th;
	pthread_create(&th, NULL, drain, &r);
	long n;
	if (vectored) {
		struct iovec iov[3] = { { data, 1000 }, { data + 1000, BIG / 2 - 1000 },
					{ data + BIG / 2, BIG / 2 } };
		n = writev(wfd, iov, 3);
	} else {
		n = write(wfd, data, BIG);
	}
	close(wfd);
	pthread_join(th, NULL);
	close(rfd);
	printf("%s: wrote %ld read %ld bad %ld\n", what, n, r.got, r.bad);
}

static void tick(int sig) { (void)sig; }

int main(void)
{
	for (int i = 0; i < BIG; i++)
		data[i] = (unsigned char)(i * 7 + i / 251);
	int p[2], s[2];
	pipe(p);
	through("pipe write", p[0], p[1], 0);
	pipe(p);
	through("pipe writev", p[0], p[1], 1);
	socketpair(AF_UNIX, SOCK_STREAM, 0, s);
	through("socket write", s[0], s[1], 0);

	/* No reader takes anything: a timer signal ends the wait. */
	struct sigaction sa = { .sa_handler = tick };
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval once = { { 0, 0 }, { 0, 30000 } };
	pipe(p);
	setitimer(ITIMER_REAL, &once, NULL);
	long n = write(p[1], data, 256 * 1024);
	printf("interrupted after some: %ld\n", n);
	setitimer(ITIMER_REAL, &once, NULL);
	n = write(p[1], data, 1000);
	show("interrupted before any", n);
	return 0;
}
