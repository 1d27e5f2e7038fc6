/* MAP_SHARED write-back: a shared mapping never changes the file's size
 * (only bytes within the file's size at write-back reach it), and bytes
 * the program did not change through the mapping are not written back over
 * what write(2)/pwrite(2) put there. With the argument "exit" the mapping
 * is left for the exit to write back, and the test reads the file. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int make(const char *name, const char *text, long size)
{
	int fd = open(name, O_CREAT | O_RDWR | O_TRUNC, 0644);
	long len = strlen(text);
	char buf[4096];

	for (long at = 0; at < size; at += sizeof buf) {
		long n = size - at < (long)sizeof buf ? size - at : (long)sizeof buf;

		for (long i = 0; i < n; i++)
			buf[i] = text[(at + i) % len];
		if (write(fd, buf, n) != n)
			printf("short write\n");
	}
	return fd;
}

/* Prints a file's size and its bytes [from, to), '.' for a NUL. */
static void show(const char *what, const char *name, long from, long to)
{
	struct stat st;
	char buf[64];
	int fd = open(name, O_RDONLY);
	long n;

	fstat(fd, &st);
	n = pread(fd, buf, to - from, from);
	for (long i = 0; i < n; i++)
		if (!buf[i])
			buf[i] = '.';
	printf("%s: size %ld bytes %ld-%ld \"%.*s\"\n", what, (long)st.st_size, from, to,
	       (int)(n < 0 ? 0 : n), buf);
	close(fd);
}

/* Which of mapping (0), pwrite (1) or nobody (2) changes a byte: blocks
 * of varied sizes, so that changed runs start and end at every alignment. */
static int owner(long pos)
{
	return (int)((pos / 7 + pos / 53 + pos / 311) % 3);
}

static unsigned long seed = 12345;

static unsigned long next(void)
{
	seed = seed * 6364136223846793005UL + 1442695040888963407UL;
	return seed >> 33;
}

/* Random writes through a shared mapping and with pwrite to other bytes of
 * the file (50001 bytes, mapped with 64 KiB), an msync between: the file
 * ends as on Linux. */
static void scattered(void)
{
	long size = 50001;
	int fd = make("r.dat", "The quick brown fox jumps over the lazy dog. ", size);
	unsigned char *p = mmap(0, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	unsigned long h = 1469598103934665603UL;
	unsigned char buf[4096];
	struct stat st;

	for (int round = 0; round < 2; round++) {
		for (int k = 0; k < 600; k++) {
			long at = next() % size, len = 1 + next() % (k % 10 ? 12 : 300);
			/* Sometimes the byte the mapping holds (never one a pwrite changed). */
			unsigned char v = next() % 4 || owner(at) ? next() : p[at] - at;

			for (long i = at; i < at + len && i < size; i++) {
				if (owner(i) == 0)
					p[i] = v + i;
				else if (owner(i) == 1 && k % 3 == 0)
					pwrite(fd, &(unsigned char){ v ^ i }, 1, i);
			}
		}
		if (!round)
			msync(p, 65536, MS_SYNC);
	}
	munmap(p, 65536);
	fstat(fd, &st);
	for (long at = 0; at < st.st_size; at += sizeof buf) {
		long n = pread(fd, buf, sizeof buf, at);

		for (long i = 0; i < n; i++)
			h = (h ^ buf[i]) * 1099511628211UL;
	}
	printf("scattered: size %ld hash %016lx\n", (long)st.st_size, h);
	close(fd);
	unlink("r.dat");
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "exit")) {
		int fd = make("e.dat", "0123456789", 10);
		char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		p[0] = 'A';
		p[1] = 'B';
		p[100] = 'x'; /* past the end of the file: never reaches it */
		pwrite(fd, "pw", 2, 6);
		close(fd);
		return 0; /* the exit writes the mapping back */
	}

	/* A 10-byte file mapped with a whole page: it stays 10 bytes. */
	int fd = make("s.dat", "0123456789", 10);
	char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	p[0] = 'A';
	p[9] = 'J';
	p[10] = 'x'; /* past the end of the file: never reaches it */
	printf("msync %d\n", msync(p, 4096, MS_SYNC));
	show("after msync", "s.dat", 0, 16);
	p[4] = 'E';
	printf("munmap %d\n", munmap(p, 4096));
	close(fd);
	show("after munmap and close", "s.dat", 0, 16);

	/* Mapped with 8192 bytes; written back after the fd is closed. */
	fd = make("s.dat", "abcdefghij", 10);
	p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	p[2] = 'C';
	printf("munmap %d\n", munmap(p, 8192));
	show("closed before munmap", "s.dat", 0, 16);

	/* pwrite to bytes the mapping did not change survives the write-back,
	 * in the same page and in another one. */
	fd = make("s.dat", "abcdefghijklmnopqrstuvwxyz", 8192);
	p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	p[1] = 'M';
	p[4097] = 'N';
	pwrite(fd, "PW", 2, 5);
	pwrite(fd, "QQ", 2, 4100);
	lseek(fd, 20, SEEK_SET);
	write(fd, "WR", 2);
	printf("munmap %d\n", munmap(p, 8192));
	show("pwrite kept, page 0", "s.dat", 0, 26);
	show("pwrite kept, page 1", "s.dat", 4096, 4106);

	/* What msync wrote is not written again: a later pwrite over it stays. */
	p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	p[0] = 'x';
	msync(p, 4096, MS_SYNC);
	pwrite(fd, "y", 1, 0);
	munmap(p, 4096);
	show("pwrite after msync kept", "s.dat", 0, 4);

	/* Part of a mapping unmapped: each part writes back what it changed. */
	p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	p[2] = '1';
	p[4098] = '2';
	pwrite(fd, "33", 2, 4099);
	printf("munmap first page %d\n", munmap(p, 4096));
	show("first page unmapped", "s.dat", 0, 4);
	pwrite(fd, "4", 1, 3);
	printf("munmap second page %d\n", munmap(p + 4096, 4096));
	show("second page unmapped", "s.dat", 4096, 4102);
	show("first page untouched", "s.dat", 0, 4);

	/* The file shrinks under the mapping: the write-back does not grow it. */
	p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	p[100] = 'z';
	p[5000] = 'w';
	ftruncate(fd, 4096);
	printf("munmap %d\n", munmap(p, 8192));
	show("shrunk under the mapping", "s.dat", 98, 102);

	/* The file grows under the mapping: the pages it now covers write back
	 * what was written there through the mapping, nothing else. */
	ftruncate(fd, 10);
	p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ftruncate(fd, 20);
	p[12] = 'g';
	pwrite(fd, "h", 1, 14);
	printf("munmap %d\n", munmap(p, 4096));
	show("grown under the mapping", "s.dat", 8, 20);
	close(fd);

	/* Open with O_APPEND: the write-back still goes where the mapping is. */
	fd = open("s.dat", O_CREAT | O_RDWR | O_TRUNC | O_APPEND, 0644);
	write(fd, "0123456789", 10);
	p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	p[0] = 'A';
	printf("munmap %d\n", munmap(p, 4096));
	write(fd, "+", 1);
	show("O_APPEND", "s.dat", 0, 16);
	close(fd);
	unlink("s.dat");
	scattered();
	return 0;
}
