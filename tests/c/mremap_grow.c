/* mremap grows a mapping (16 -> 64 pages, MREMAP_MAYMOVE) after a hole was
 * unmapped in it and mapped again (MAP_FIXED) and two mprotects that undo
 * each other: Linux merges the pieces back into one mapping and moves it,
 * contents and all. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include "report.h"

#define PAGE 4096

int main(void)
{
	char *m = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (int i = 0; i < 16; i++)
		m[i * PAGE] = 'a' + i;
	show("munmap of a hole", munmap(m + 4 * PAGE, 2 * PAGE));
	char *f = mmap(m + 4 * PAGE, 2 * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	printf("refill at the hole: %d\n", f == m + 4 * PAGE);
	m[4 * PAGE] = 'E';
	show("mprotect read-only", mprotect(m + 8 * PAGE, PAGE, PROT_READ));
	show("mprotect back", mprotect(m + 8 * PAGE, PAGE, PROT_READ | PROT_WRITE));
	char *g = mremap(m, 16 * PAGE, 64 * PAGE, MREMAP_MAYMOVE);
	printf("mremap to 64 pages: %s\n", g == MAP_FAILED ? ename(errno) : "ok");
	if (g != MAP_FAILED) {
		int same = 1;
		for (int i = 0; i < 16; i++)
			same &= g[i * PAGE] == (i == 4 ? 'E' : i == 5 ? 0 : 'a' + i);
		printf("contents kept: %d\n", same);
		memset(g + 16 * PAGE, 1, 48 * PAGE);
		printf("grown part writable: 1\n");
	}
	return 0;
}
