/* Two functions that burn CPU 3:1 in interleaved slices, then writes to
 * /dev/null: a profile shows hot_a at three times hot_b and the writes as
 * host calls. Built with frame pointers so stacks reach main. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile unsigned long sink;

/* The same work per step, in two functions of their own (other shifts, so
 * no compiler folds them into one). */
static __attribute__((noinline)) void hot_a(unsigned long n)
{
	unsigned long x = 88172645463325252UL;
	for (unsigned long i = 0; i < 3 * n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	sink = x;
}

static __attribute__((noinline)) void hot_b(unsigned long n)
{
	unsigned long x = 88172645463325252UL;
	for (unsigned long i = 0; i < n; i++) {
		x ^= x << 12;
		x ^= x >> 9;
		x ^= x << 15;
	}
	sink = x;
}

int main(int argc, char **argv)
{
	unsigned long rounds = argc > 1 ? strtoul(argv[1], 0, 10) : 400;
	for (unsigned long r = 0; r < rounds; r++) {
		hot_a(1000000);
		hot_b(1000000);
	}
	int fd = open("/dev/null", O_WRONLY);
	unsigned long writes = argc > 2 ? strtoul(argv[2], 0, 10) : 0;
	for (unsigned long i = 0; i < writes; i++)
		write(fd, "x", 1);
	printf("done %lu rounds, %lu writes\n", rounds, writes);
	return 0;
}
