/* How soon a thread blocked in epoll_wait (no timeout) sees a pipe become
 * readable: the main thread writes a timestamp every 5 ms, the waiter
 * reads it on waking; prints the median and the 90th percentile in µs. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define N 200

static int p[2];
static double lat[N];

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void *waiter(void *arg) {
	(void)arg;
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN }, out;
	epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
	for (int i = 0; i < N; i++) {
		double sent;
		epoll_wait(ep, &out, 1, -1);
		read(p[0], &sent, sizeof sent);
		lat[i] = now() - sent;
	}
	return NULL;
}

static int cmp(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(void) {
	pthread_t t;
	pipe(p);
	pthread_create(&t, NULL, waiter, NULL);
	for (int i = 0; i < N; i++) {
		usleep(5000);
		double sent = now();
		write(p[1], &sent, sizeof sent);
	}
	pthread_join(t, NULL);
	qsort(lat, N, sizeof *lat, cmp);
	fprintf(stderr, "epoll wake latency: median %.1f us, p90 %.1f us\n", lat[N / 2], lat[N * 9 / 10]);
	return 0;
}
