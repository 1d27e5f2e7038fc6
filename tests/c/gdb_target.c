/* The program tests/gdb_test.ts debugs with Debian's gdb: a call chain to
 * break in and walk (main -> middle -> leaf), a callback that libc's qsort
 * calls (a backtrace through libc), a string to read, and with argument
 * "crash" a NULL write. Prints one line and exits 7. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *message = "gdb sees this string";
volatile int sink;

__attribute__((noinline)) int leaf(int x) {
	sink = x;
	return x * 2;
}

__attribute__((noinline)) int middle(int x) {
	int y = leaf(x + 1);
	return y + 1;
}

__attribute__((noinline)) int compare(const void *a, const void *b) {
	sink = *(const int *)a;
	return *(const int *)a - *(const int *)b;
}

__attribute__((noinline)) void crash(void) {
	*(volatile int *)8 = 1;
}

int main(int argc, char **argv) {
	int r = middle(argc);
	int v[2] = {2, 1};
	qsort(v, 2, sizeof v[0], compare);
	r += v[0] - 1;
	printf("%s %d\n", message, r);
	fflush(stdout);
	if (argc > 1 && strcmp(argv[1], "crash") == 0) crash();
	return 7;
}
