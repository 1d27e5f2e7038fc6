/* A 1 MiB allocation must be usable and zeroed; freeing and reallocating works. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void)
{
	for (int round = 0; round < 3; round++) {
		unsigned char *p = calloc(1 << 20, 1);
		if (!p) return 1;
		for (int i = 0; i < 1 << 20; i++) if (p[i]) { printf("not zero at %d\n", i); return 1; }
		memset(p, 0xab, 1 << 20);
		long sum = 0;
		for (int i = 0; i < 1 << 20; i += 4096) sum += p[i];
		printf("round %d sum %ld\n", round, sum);
		free(p);
	}
	char *q = malloc(100);
	strcpy(q, "small ok");
	puts(q);
	return 0;
}
