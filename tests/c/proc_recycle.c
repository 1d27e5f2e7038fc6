/* Children one after another, each on the machine the one before left
 * (hermitux recycles the VMs of ended processes): none may see what an
 * earlier child wrote, in memory its parent has or in memory only that
 * child touched, and an execve'd image starts from clean memory too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "proc.h"

#define SIZE (8 << 20)

static unsigned char parent_buf[SIZE];

/* How many bytes of [p, p + n) differ from `v`. */
static size_t differ(const unsigned char *p, size_t n, unsigned char v)
{
	size_t d = 0;
	for (size_t i = 0; i < n; i++)
		d += p[i] != v;
	return d;
}

/* A child that checks what it inherited, then dirties everything it can. */
static void child(int round)
{
	size_t bad = differ(parent_buf, SIZE, 0x5a);
	/* Fresh anonymous memory: the same address each round (the same map). */
	unsigned char *fresh = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t dirty = differ(fresh, SIZE, 0);
	unsigned char *heap = malloc(SIZE);
	size_t heap_dirty = differ(heap, SIZE, 0);
	say("round %d: inherited bytes changed %zu, fresh mmap nonzero %zu, fresh heap nonzero %zu\n",
	    round, bad, dirty, heap_dirty);
	memset(parent_buf, round, SIZE);
	memset(fresh, 0xee, SIZE);
	memset(heap, 0xdd, SIZE);
	_exit(round);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		/* The execve'd image: its memory must be clean as well. */
		unsigned char *fresh = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
					    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		say("exec image: static buffer nonzero %zu, fresh mmap nonzero %zu\n",
		    differ(parent_buf, SIZE, 0), differ(fresh, SIZE, 0));
		return 0;
	}
	memset(parent_buf, 0x5a, SIZE);
	for (int round = 1; round <= 6; round++) {
		pid_t p = fork();
		if (p == 0)
			child(round);
		int st;
		waitpid(p, &st, 0);
		status("child", st);
	}
	for (int i = 0; i < 2; i++) {
		pid_t p = fork();
		if (p == 0) {
			execl(argv[0], argv[0], "exec", (char *)0);
			_exit(127);
		}
		int st;
		waitpid(p, &st, 0);
		status("exec child", st);
	}
	say("parent buffer still 0x5a: %d\n", differ(parent_buf, SIZE, 0x5a) == 0);
	return 0;
}
