/* truncate/ftruncate: grow reads zeros, shrink, errors. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include "report.h"

int main(void)
{
	int fd = open("t.dat", O_CREAT | O_RDWR | O_TRUNC, 0644);
	write(fd, "abcdef", 6);
	show("ftruncate grow", ftruncate(fd, 8192));
	char buf[4] = { 1, 1, 1, 1 };
	pread(fd, buf, 4, 4096);
	printf("hole reads zero %d\n", !buf[0] && !buf[3]);
	show("truncate shrink", truncate("t.dat", 3));
	struct stat st;
	fstat(fd, &st);
	printf("size %ld\n", (long)st.st_size);
	show("ftruncate negative", ftruncate(fd, -1));
	int ro = open("t.dat", O_RDONLY);
	show("ftruncate read-only fd", ftruncate(ro, 1));
	show("truncate a directory", truncate(".", 0));
	show("truncate missing", truncate("none", 0));
	unlink("t.dat");
	return 0;
}
