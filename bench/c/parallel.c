/* CPU-bound work split over argv[1] threads (default 2); prints the result
 * and, on stderr, the wall time, so a run shows the speed-up. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long steps;

static void *spin(void *arg) {
	unsigned long x = (unsigned long)arg + 88172645463325252UL;
	for (long i = 0; i < steps; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return (void *)(x & 0xffff);
}

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 2;
	long total = argc > 2 ? atol(argv[2]) : 400000000L;
	steps = total / n;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	pthread_t t[64];
	long sum = 0;
	for (long i = 0; i < n; i++)
		pthread_create(&t[i], NULL, spin, (void *)(i % 2));
	for (int i = 0; i < n; i++) {
		void *r;
		pthread_join(t[i], &r);
		sum += (long)r;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("threads %d result %ld\n", n, sum % 1000 == 0 ? -1 : n);
	fprintf(stderr, "wall %.1f ms\n", (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
	return 0;
}
