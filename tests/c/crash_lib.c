/* A crash inside a shared library (memset of NULL in libc: a write, so it
 * faults with syscall rewriting too, which maps page 0 for reading): the
 * report names the library, and the backtrace walks through it to main. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
	char *p = argc > 5 ? argv[1] : NULL;
	/* Called through a pointer, so that the compiler cannot inline it. */
	void *(*volatile set)(void *, int, size_t) = memset;
	set(p, 0, 64);
	printf("%d\n", p[1]);
	return 0;
}
