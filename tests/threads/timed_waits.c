/* Timed futex waits on a thread while the main thread waits in
 * pthread_join: zero, past-absolute and short timeouts all end in
 * ETIMEDOUT (a wait whose deadline has already passed must still end). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* <linux/futex.h> is not in musl's include path. */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAIT_BITSET_PRIVATE 137
#define FUTEX_BITSET_MATCH_ANY 0xffffffff

static int word;

static long wait_rel(long ns) {
	struct timespec t = { 0, ns };
	return syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &t, NULL, 0) < 0 ? errno : 0;
}

static void *waiter(void *arg) {
	int timeouts = 0;
	for (int i = 0; i < 50; i++)
		timeouts += wait_rel(0) == ETIMEDOUT;
	for (int i = 0; i < 20; i++)
		timeouts += wait_rel(1000000) == ETIMEDOUT;
	struct timespec past = { 1, 0 };
	long r = syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE, 0, &past, NULL, FUTEX_BITSET_MATCH_ANY);
	timeouts += r < 0 && errno == ETIMEDOUT;
	return (void *)(long)timeouts;
}

int main(void) {
	pthread_t t;
	void *r;
	pthread_create(&t, NULL, waiter, NULL);
	pthread_join(t, &r);
	printf("timeouts %ld of 71\n", (long)r);
	return 0;
}
