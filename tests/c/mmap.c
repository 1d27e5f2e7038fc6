/* Anonymous mmap/munmap/mprotect: zeroed memory, reuse after unmap, fixed maps. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
int main(void)
{
	size_t len = 4 << 20;
	for (int i = 0; i < 4; i++) {
		unsigned char *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) { puts("mmap failed"); return 1; }
		int zero = 1;
		for (size_t j = 0; j < len; j += 1024) zero &= p[j] == 0;
		printf("map %d zeroed %d\n", i, zero);
		memset(p, 0x5a, len);
		if (munmap(p, len)) { puts("munmap failed"); return 1; }
	}
	unsigned char *a = mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(a, 1, 3 * 4096);
	printf("munmap middle %d\n", munmap(a + 4096, 4096));
	unsigned char *b = mmap(a + 4096, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	printf("fixed in hole %d zero %d\n", b == a + 4096, b[0] == 0 && b[4095] == 0);
	printf("mprotect %d\n", mprotect(a, 4096, PROT_READ));
	printf("zero length %d\n", mmap(0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED);
	return 0;
}
