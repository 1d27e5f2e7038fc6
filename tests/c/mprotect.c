/* Page protections are enforced: a write to a read-only page and any
 * access to a PROT_NONE page raise SIGSEGV (SEGV_ACCERR, si_addr the byte),
 * and giving access back works; an anonymous read-only mapping; a guard page between two usable ones; a
 * PROT_NONE reservation made usable piece by piece; mremap keeps a
 * protection; munmap and a new mapping at the same place start afresh;
 * another thread sees a protection set after it started; the pages of a
 * file mapping past the file's end raise SIGBUS (BUS_ADRERR). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf jb;
static volatile char *expect;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	printf("  sig %d code %d at expected %d\n", sig, si->si_code, (char *)si->si_addr == expect);
	siglongjmp(jb, 1);
	(void)uc;
}

/* Reads (or writes) *p; says whether it faulted. */
static int faults(volatile char *p, int write)
{
	expect = p;
	if (sigsetjmp(jb, 1))
		return 1;
	if (write)
		*p = 7;
	else
		(void)*p;
	return 0;
}

static void *thread_write(void *p)
{
	printf("thread write to read-only faults %d\n", faults(p, 1));
	return NULL;
}

int main(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	const long pg = 4096;

	char *a = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	a[pg] = 5;
	printf("read-only: mprotect %d\n", mprotect(a + pg, pg, PROT_READ));
	printf("write faults %d\n", faults(a + pg + 10, 1));
	printf("read faults %d value %d\n", faults(a + pg, 0), a[pg]);
	printf("neighbour write faults %d\n", faults(a + 2 * pg, 1));
	printf("back to rw: mprotect %d\n", mprotect(a + pg, pg, PROT_READ | PROT_WRITE));
	printf("write faults %d value %d\n", faults(a + pg, 1), a[pg]);

	printf("no access: mprotect %d\n", mprotect(a, 4 * pg, PROT_NONE));
	printf("read faults %d\n", faults(a + 3 * pg + 1, 0));
	mprotect(a, 4 * pg, PROT_READ | PROT_WRITE);
	printf("restored: read faults %d value %d\n", faults(a + pg, 0), a[pg]);

	char *ro = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("anonymous read-only: read faults %d\n", faults(ro + 1, 0));
	printf("anonymous read-only: write faults %d\n", faults(ro + 2, 1));

	/* A stack-like guard page. */
	char *g = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mprotect(g + pg, pg, PROT_NONE);
	printf("guard: below %d above %d guard %d\n", faults(g, 1), faults(g + 2 * pg, 1),
	       faults(g + pg + 100, 1));

	/* Reserve, then make usable in pieces (as ld.so and allocators do). */
	char *r = mmap(NULL, 64 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("reserved: read faults %d\n", faults(r + 5 * pg, 0));
	mprotect(r, 8 * pg, PROT_READ | PROT_WRITE);
	printf("first 8 pages: write faults %d, page 8 faults %d\n", faults(r + 7 * pg, 1),
	       faults(r + 8 * pg, 0));
	char *fixed = mmap(r + 16 * pg, 4 * pg, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	printf("fixed over it: write faults %d value %d\n", faults(fixed + pg, 1), fixed[pg]);
	mprotect(r, 8 * pg, PROT_READ);
	char *m = mremap(r, 8 * pg, 32 * pg, MREMAP_MAYMOVE);
	printf("mremap: moved %d, read-only still: write faults %d, value %d\n", m != r,
	       faults(m + 7 * pg, 1), m[7 * pg]);

	/* Gone, and mapped again at the same place: usable. */
	munmap(r + 16 * pg, 4 * pg);
	munmap(m, 32 * pg);
	char *again = mmap(m, 32 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
			   -1, 0);
	printf("mapped again: write faults %d value %d\n", faults(again + 7 * pg, 1), again[7 * pg]);

	/* A thread started before the protection. */
	char *t = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_t th;
	mprotect(t, pg, PROT_READ);
	pthread_create(&th, NULL, thread_write, t + 3);
	pthread_join(th, NULL);

	/* A file shorter than its mapping. */
	int fd = open("short.bin", O_RDWR | O_CREAT | O_TRUNC, 0600);
	write(fd, "hello", 5);
	char *f = mmap(NULL, 3 * pg, PROT_READ, MAP_PRIVATE, fd, 0);
	printf("file: byte %c, end of its page %d faults %d\n", f[1], f[pg - 1], faults(f + pg - 1, 0));
	printf("past the end: read faults %d\n", faults(f + pg + 5, 0));
	printf("past the end: next page faults %d\n", faults(f + 2 * pg, 0));
	munmap(f, 3 * pg);
	char *anon = mmap(f, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
			  -1, 0);
	printf("anonymous there now: write faults %d\n", faults(anon + pg + 5, 1));
	close(fd);
	unlink("short.bin");
	return 0;
}
