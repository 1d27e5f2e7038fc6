/* A compute-bound loop (no syscalls): prints its own time in ms to stderr. */
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }
int main(void)
{
	double t0 = now();
	unsigned long x = 88172645463325252UL, sum = 0;
	for (long i = 0; i < 200000000; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; sum += x & 0xff; }
	fprintf(stderr, "compute %.1f ms (%lu)\n", now() - t0, sum % 10);
	return 0;
}
