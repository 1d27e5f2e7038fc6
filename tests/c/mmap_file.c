#define _GNU_SOURCE
/* File-backed mmap: private copies, shared write-back via msync/munmap,
 * offsets, the zero tail, errors; mremap and madvise. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void)
{
	int fd = open("m.dat", O_CREAT | O_RDWR | O_TRUNC, 0644);
	char page[8192];
	for (int i = 0; i < 8192; i++) page[i] = 'a' + i % 26;
	write(fd, page, 6000);
	char *p = mmap(0, 6000, PROT_READ, MAP_PRIVATE, fd, 0);
	printf("private map %d first %c byte 5999 %c tail zero %d\n", p != MAP_FAILED, p[0], p[5999], p[6000] == 0 && p[8191] == 0);
	char *q = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 4096);
	printf("offset map %c\n", q[0]);
	q[0] = '!';
	char c;
	pread(fd, &c, 1, 4096);
	printf("private write stays private: %c\n", c);
	char *s = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	s[1] = '#';
	printf("msync %d\n", msync(s, 4096, MS_SYNC));
	pread(fd, &c, 1, 1);
	printf("shared write after msync: %c\n", c);
	s[2] = '$';
	printf("munmap %d\n", munmap(s, 4096));
	pread(fd, &c, 1, 2);
	printf("shared write after munmap: %c\n", c);
	errno = 0;
	void *bad = mmap(0, 4096, PROT_READ, MAP_PRIVATE, fd, 100);
	printf("unaligned offset %d %s\n", bad == MAP_FAILED, strerror(errno));
	errno = 0;
	bad = mmap(0, 4096, PROT_READ, MAP_PRIVATE, 77, 0);
	printf("bad fd %d %s\n", bad == MAP_FAILED, strerror(errno));
	int wo = open("m.dat", O_WRONLY);
	errno = 0;
	bad = mmap(0, 4096, PROT_READ, MAP_PRIVATE, wo, 0);
	printf("write-only fd %d %s\n", bad == MAP_FAILED, strerror(errno));
	int ro = open("m.dat", O_RDONLY);
	errno = 0;
	bad = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0);
	printf("shared writable on read-only fd %d %s\n", bad == MAP_FAILED, strerror(errno));
	char *a = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(a, 7, 8192);
	char *b = mremap(a, 8192, 1 << 20, MREMAP_MAYMOVE);
	printf("mremap grow %d kept %d new zero %d\n", b != MAP_FAILED, b[8191] == 7, b[8192] == 0 && b[(1 << 20) - 1] == 0);
	b = mremap(b, 1 << 20, 4096, 0);
	printf("mremap shrink %d kept %d\n", b != MAP_FAILED, b[0] == 7);
	int m = madvise(b, 4096, MADV_DONTNEED);
	printf("madvise dontneed %d zero %d\n", m, b[0] == 0);
	char *sh = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	sh[3] = '%';
	unlink("m.dat"); /* written back at exit into the unlinked file: nothing to see */
	close(fd);
	return 0;
}
