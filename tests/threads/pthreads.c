/* POSIX threads as applications use them: create/join with results, a
 * mutex-protected counter, a condition variable hand-off, a barrier, a
 * rwlock, __thread TLS, thread-specific data with destructors, detached
 * threads, and gettid distinct per thread. Output is deterministic. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#define N 4
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_barrier_t bar;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_key_t key;
static long counter, shared_value, ready, destructed;
static __thread long tls = 7;
static long tids[N];

static void destroy(void *v) {
	pthread_mutex_lock(&mu);
	destructed += (long)v;
	pthread_mutex_unlock(&mu);
}

static void *worker(void *arg) {
	long id = (long)arg;
	tids[id] = syscall(SYS_gettid);
	tls += id;
	pthread_setspecific(key, (void *)(id + 1));
	for (int i = 0; i < 20000; i++) {
		pthread_mutex_lock(&mu);
		counter++;
		pthread_mutex_unlock(&mu);
	}
	pthread_barrier_wait(&bar);
	pthread_rwlock_rdlock(&rw);
	long seen = shared_value;
	pthread_rwlock_unlock(&rw);
	pthread_mutex_lock(&mu);
	while (!ready)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return (void *)(tls * 100 + seen);
}

static void *detached(void *arg) {
	pthread_mutex_lock(&mu);
	shared_value += 1000;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	return NULL;
}

int main(void) {
	pthread_t t[N];
	pthread_key_create(&key, destroy);
	pthread_barrier_init(&bar, NULL, N + 1);
	pthread_rwlock_wrlock(&rw);
	for (long i = 0; i < N; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	shared_value = 5;
	pthread_rwlock_unlock(&rw);
	pthread_barrier_wait(&bar);
	printf("counter after barrier %ld\n", counter);
	printf("pthread_kill(t, 0) %d\n", pthread_kill(t[1], 0));
	pthread_mutex_lock(&mu);
	ready = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < N; i++) {
		void *r;
		pthread_join(t[i], &r);
		printf("thread %d returned %ld\n", i, (long)r);
	}
	printf("main tls %ld destructors %ld\n", tls, destructed);
	int distinct = 1;
	for (int i = 0; i < N; i++) {
		distinct &= tids[i] != getpid();
		for (int j = 0; j < i; j++)
			distinct &= tids[i] != tids[j];
	}
	printf("distinct tids %d\n", distinct);
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_t d;
	pthread_mutex_lock(&mu);
	long before = shared_value;
	pthread_create(&d, &a, detached, NULL);
	while (shared_value == before)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	printf("detached thread ran %ld\n", shared_value);
	return 0;
}
