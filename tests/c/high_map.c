/* Address space beyond RAM (issue 16): reservations far larger than the
 * VM's memory, touched sparsely; a fixed mapping at 64 TiB; mremap of a
 * large region; host calls on buffers up there; /proc/self/maps.
 * With "oom": touches more than any guest of 64 MiB has. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "report.h"

#define MIB (1UL << 20)
#define GIB (1UL << 30)

static sigjmp_buf jump;
static volatile int code;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	code = si->si_code;
	siglongjmp(jump, 1);
}

/* Whether a read of *p faults, and with which si_code. */
static const char *probe(volatile char *p)
{
	if (sigsetjmp(jump, 1))
		return code == SEGV_ACCERR ? "SIGSEGV/SEGV_ACCERR" : "SIGSEGV/other";
	(void)*p;
	return "readable";
}

/* The lines of /proc/self/maps inside [lo, hi), as offsets from lo. */
static void maps(const char *what, unsigned long lo, unsigned long hi)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];

	while (f && fgets(line, sizeof line, f)) {
		unsigned long s, e;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) != 3 || e <= lo || s >= hi)
			continue;
		s = s < lo ? lo : s;
		e = e > hi ? hi : e;
		printf("%s: +%lu MiB, %lu MiB, %s\n", what, (s - lo) / MIB, (e - s) / MIB, perms);
	}
	if (f)
		fclose(f);
}

static int oom(void)
{
	char *m = mmap(NULL, 8 * GIB, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	printf("8 GiB reserved: %s\n", m == MAP_FAILED ? ename(errno) : "ok");
	fflush(stdout);
	for (unsigned long off = 0; off < 8 * GIB; off += 4096)
		m[off] = 1;
	printf("touched 8 GiB\n");
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };

	if (argc > 1 && !strcmp(argv[1], "oom"))
		return oom();
	sigaction(SIGSEGV, &sa, NULL);

	/* 16 GiB of PROT_NONE, 1 MiB committed 10 GiB in. */
	char *r = mmap(NULL, 16 * GIB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	printf("16 GiB PROT_NONE: %s\n", r == MAP_FAILED ? ename(errno) : "ok");
	if (r == MAP_FAILED)
		return 1;
	char *c = r + 10 * GIB;
	show("mprotect 1 MiB inside", mprotect(c, MIB, PROT_READ | PROT_WRITE));
	for (unsigned long i = 0; i < MIB; i += 4096)
		c[i] = (char)(i >> 12);
	int ok = 1;
	for (unsigned long i = 0; i < MIB; i += 4096)
		ok &= c[i] == (char)(i >> 12);
	printf("committed part holds: %d\n", ok);
	printf("untouched read: %d\n", c[MIB - 1]);
	printf("below it: %s\n", probe(c - 4096));
	printf("far below: %s\n", probe(r));
	maps("reservation", (unsigned long)r, (unsigned long)r + 16 * GIB);

	/* Host calls on buffers up there: a pipe, a file, a string. */
	int fds[2];
	char *msg = c + 4096 - 5; /* across a page boundary */
	pipe(fds);
	memcpy(msg, "hello above RAM\n", 16);
	printf("write from above: %zd\n", write(fds[1], msg, 16));
	char *in = c + 3 * 4096 - 3;
	printf("read to above: %zd\n", read(fds[0], in, 16));
	fwrite(in, 1, 16, stdout);
	strcpy(c + 8192, "/proc/self/status");
	int fd = open(c + 8192, O_RDONLY);
	printf("open of a path above: %s\n", fd < 0 ? ename(errno) : "ok");
	printf("read of PROT_NONE memory: %s\n",
	       read(fd, r, 16) < 0 ? ename(errno) : "read");
	close(fd);

	/* A file mapped over part of the reservation (a JVM's CDS archive). */
	int exe = open("/proc/self/exe", O_RDONLY);
	char head[64];
	pread(exe, head, sizeof head, 4096);
	char *fm = mmap(c + 2 * MIB, 8192, PROT_READ, MAP_PRIVATE | MAP_FIXED, exe, 4096);
	printf("file mapped inside: %s, same bytes: %d\n", fm == c + 2 * MIB ? "there" : "elsewhere",
	       fm != MAP_FAILED && !memcmp(fm, head, sizeof head));
	printf("past it: %s\n", probe(c + 2 * MIB + 8192));
	close(exe);
	show("munmap of the reservation", munmap(r, 16 * GIB));

	/* 8 GiB read-write, MAP_NORESERVE, touched once per GiB. */
	char *w = mmap(NULL, 8 * GIB, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	printf("8 GiB read-write: %s\n", w == MAP_FAILED ? ename(errno) : "ok");
	for (unsigned long g = 0; g < 8; g++)
		w[g * GIB + 12345] = (char)('a' + g);
	ok = 1;
	for (unsigned long g = 0; g < 8; g++)
		ok &= w[g * GIB + 12345] == (char)('a' + g) && w[g * GIB + 4096 * 7] == 0;
	printf("touched once per GiB: %d\n", ok);
	show("madvise DONTNEED", madvise(w, 8 * GIB, MADV_DONTNEED));
	printf("reads zero after: %d\n", w[12345] == 0 && w[7 * GIB + 12345] == 0);
	show("munmap", munmap(w, 8 * GIB));

	/* A fixed mapping at 64 TiB. */
	char *want = (char *)(64UL << 40);
	char *t = mmap(want, 2 * MIB, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	printf("MAP_FIXED_NOREPLACE at 64 TiB: %s\n",
	       t == want ? "there" : t == MAP_FAILED ? ename(errno) : "elsewhere");
	t[0] = 'x';
	t[2 * MIB - 1] = 'y';
	printf("holds: %c%c\n", t[0], t[2 * MIB - 1]);
	char *again = mmap(want + MIB, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS |
			   MAP_FIXED_NOREPLACE, -1, 0);
	printf("again over it: %s\n", again == MAP_FAILED ? ename(errno) : "mapped");
	char *hint = mmap(want + 4 * MIB, 4096, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("a hint up there: %s\n", hint == want + 4 * MIB ? "taken" : "not taken");
	pid_t pid = fork();
	if (pid == 0) {
		t[1] = 'c'; /* the child's copy */
		_exit(t[0] == 'x' && t[2 * MIB - 1] == 'y' ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("fork: child saw it: %d, parent's copy kept: %d\n",
	       WIFEXITED(st) && WEXITSTATUS(st) == 0, t[1] == 0);
	show("mprotect read-only", mprotect(t, 4096, PROT_READ));
	printf("read-only page: %c, next page writable: %d\n", t[0], (t[4096] = 1));
	munmap(t, 2 * MIB);
	printf("after munmap: %s\n", probe(t));

	/* mremap of a large region: 1 GiB with its ends written, grown to 3 GiB. */
	char *big = mmap(NULL, GIB, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	big[0] = 'A';
	big[GIB / 2 + 1] = 'M';
	big[GIB - 1] = 'Z';
	mmap(big + GIB, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	char *grown = mremap(big, GIB, 3 * GIB, MREMAP_MAYMOVE);
	printf("mremap 1 -> 3 GiB: %s\n", grown == MAP_FAILED ? ename(errno) : "ok");
	if (grown != MAP_FAILED) {
		printf("moved: %d, contents: %c%c%c, new part: %d\n", grown != big, grown[0],
		       grown[GIB / 2 + 1], grown[GIB - 1], grown[2 * GIB]);
		grown[3 * GIB - 1] = 1;
		char *shrunk = mremap(grown, 3 * GIB, GIB / 2, 0);
		printf("shrunk in place: %d, %c\n", shrunk == grown, shrunk[0]);
	}
	return 0;
}
