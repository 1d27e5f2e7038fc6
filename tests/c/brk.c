/* The program break (raw brk syscall, as malloc uses it) grows, the new
 * memory is usable, and memory given back reads as zero when regrown. */
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
static char *brk_(void *p) { return (char *)syscall(SYS_brk, p); }
int main(void)
{
	/* stdio's buffer must not live in the heap this test shrinks (a dynamic
	 * glibc mallocs it with brk). */
	static char buf[4096];
	setvbuf(stdout, buf, _IOFBF, sizeof buf);
	char *start = brk_(0);
	char *end = brk_(start + (8 << 20));
	printf("grew by %ld\n", (long)(end - start));
	for (char *p = start; p < end; p += 4096) *p = 1;
	printf("shrunk back: %d\n", brk_(start) == start);
	char *again = brk_(start + 4096);
	printf("regrown %d reads zero: %d\n", again == start + 4096, start[0] == 0 && start[4095] == 0);
	printf("below start refused: %d\n", brk_(start - 4096) == again);
	printf("huge refused: %d\n", brk_(start + (1L << 46)) == again);
	return 0;
}
