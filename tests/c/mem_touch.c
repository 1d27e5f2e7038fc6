/* Allocates and touches argv[1] MiB (for --mem): prints what it got; exits
 * 1 if malloc fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], 0, 10) : 100;
	unsigned char *p = malloc(mib << 20);
	if (!p) {
		printf("malloc of %zu MiB failed\n", mib);
		return 1;
	}
	memset(p, 0x5a, mib << 20);
	unsigned long sum = 0;
	for (size_t i = 0; i < mib << 20; i += 4096) sum += p[i];
	printf("touched %zu MiB, sum %lu\n", mib, sum);
	return 0;
}
