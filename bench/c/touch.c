/* First touch of anonymous memory: MiB (argv[1]) mapped private, one byte
 * written every 4 KiB; with "noreserve", MAP_NORESERVE (which hermitux
 * places above RAM). Prints its own time in ms to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }
int main(int argc, char **argv)
{
	unsigned long len = (argc > 1 ? strtoul(argv[1], 0, 10) : 1024) << 20;
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	if (argc > 2 && !strcmp(argv[2], "noreserve"))
		flags |= MAP_NORESERVE;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (m == MAP_FAILED) { perror("mmap"); return 1; }
	double t0 = now();
	for (unsigned long i = 0; i < len; i += 4096) m[i] = 1;
	fprintf(stderr, "touch %.1f ms (at %p)\n", now() - t0, (void *)m);
	return 0;
}
