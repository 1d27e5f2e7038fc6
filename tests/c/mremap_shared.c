/* mremap of a file's MAP_SHARED mapping (Python's mmap.resize): grown
 * after the file was, moved past a neighbour, its bytes the file's; then
 * shrunk in place. No copy is written back: the pages are the file's. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define PAGE 4096
int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "mrs.tmp";
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ftruncate(fd, 2 * PAGE);
	char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	memcpy(m, "first", 5);
	/* A neighbour right after it, so that growing must move it. */
	char *n = mmap(m + 2 * PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	printf("neighbour placed: %d\n", n == m + 2 * PAGE);
	ftruncate(fd, 4 * PAGE);
	char *g = mremap(m, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE);
	printf("grown: %s, moved %d\n", g == MAP_FAILED ? "failed" : "ok", g != m);
	if (g == MAP_FAILED) return 1;
	printf("old bytes there: %d\n", !memcmp(g, "first", 5));
	memcpy(g + 3 * PAGE, "fourth page", 11);
	char buf[16] = { 0 };
	pread(fd, buf, 11, 3 * PAGE);
	printf("file sees the new page: %d\n", !strcmp(buf, "fourth page"));
	pwrite(fd, "pwritten", 8, PAGE);
	printf("mapping sees pwrite: %d\n", !memcmp(g + PAGE, "pwritten", 8));
	char *s = mremap(g, 4 * PAGE, PAGE, 0);
	printf("shrunk in place: %d\n", s == g);
	munmap(s, PAGE);
	struct stat st;
	fstat(fd, &st);
	printf("file size %ld\n", (long)st.st_size);
	unlink(path);
	return 0;
}
