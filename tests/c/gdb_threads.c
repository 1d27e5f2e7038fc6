/* Four threads for tests/gdb_test.ts: three workers meet main at a
 * barrier, each calls worker_point (where gdb breaks), and meet again. */
#include <pthread.h>
#include <stdio.h>

static pthread_barrier_t bar;
volatile int hits;

__attribute__((noinline)) void worker_point(long id) {
	__sync_fetch_and_add(&hits, 1 + (int)(id - id));
}

static void *worker(void *arg) {
	pthread_barrier_wait(&bar);
	worker_point((long)arg);
	pthread_barrier_wait(&bar);
	return 0;
}

int main(void) {
	pthread_t t[3];
	pthread_barrier_init(&bar, 0, 4);
	for (long i = 0; i < 3; i++) pthread_create(&t[i], 0, worker, (void *)i);
	pthread_barrier_wait(&bar);
	pthread_barrier_wait(&bar);
	for (int i = 0; i < 3; i++) pthread_join(t[i], 0);
	printf("hits %d\n", hits);
	return 0;
}
