/* qsort with a comparison that burns CPU: the profile's stacks must pass
 * through libc's qsort (built without frame pointers) to reach main. */
#include <stdio.h>
#include <stdlib.h>

static volatile unsigned long sink;

static int __attribute__((noinline)) cmp_slow(const void *a, const void *b)
{
	unsigned long x = *(const int *)a + 88172645463325252UL;
	for (int i = 0; i < 2000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	sink = x;
	return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

int main(int argc, char **argv)
{
	int n = 2000, rounds = argc > 1 ? atoi(argv[1]) : 20;
	int *v = malloc(n * sizeof *v);
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < n; i++)
			v[i] = (i * 7919 + r) % n;
		qsort(v, n, sizeof *v, cmp_slow);
	}
	printf("sorted %d rounds, first %d last %d\n", rounds, v[0], v[n - 1]);
	return 0;
}
