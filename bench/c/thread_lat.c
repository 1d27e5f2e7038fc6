/* Thread latencies: create+join of an empty thread, and a futex ping-pong
 * between two threads (one round trip = two wakes and two waits). Prints
 * "create+join N ns" and "pingpong N ns" on stderr. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}
static void *nothing(void *a) { return a; }
static atomic_int turn;
static long rounds;

static void wait_for(int v) {
	while (atomic_load(&turn) != v)
		syscall(SYS_futex, &turn, FUTEX_WAIT_PRIVATE, !v, NULL, NULL, 0);
}
static void pass_to(int v) {
	atomic_store(&turn, v);
	syscall(SYS_futex, &turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
static void *ponger(void *a) {
	for (long i = 0; i < rounds; i++) {
		wait_for(1);
		pass_to(0);
	}
	return a;
}

int main(int argc, char **argv) {
	long creates = argc > 1 ? atol(argv[1]) : 200;
	rounds = argc > 2 ? atol(argv[2]) : 2000;
	pthread_t t;
	pthread_create(&t, NULL, nothing, NULL); /* warm-up */
	pthread_join(t, NULL);
	double a = now();
	for (long i = 0; i < creates; i++) {
		pthread_create(&t, NULL, nothing, NULL);
		pthread_join(t, NULL);
	}
	double b = now();
	fprintf(stderr, "create+join %.0f ns\n", (b - a) / creates);
	pthread_create(&t, NULL, ponger, NULL);
	a = now();
	for (long i = 0; i < rounds; i++) {
		pass_to(1);
		wait_for(0);
	}
	b = now();
	pthread_join(t, NULL);
	fprintf(stderr, "pingpong %.0f ns\n", (b - a) / rounds);
	return 0;
}
