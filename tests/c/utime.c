/* utimensat and futimens set times that stat then reports; UTIME_OMIT. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "report.h"

int main(void)
{
	close(open("t.txt", O_CREAT | O_WRONLY, 0644));
	struct timespec ts[2] = { { 1000000000, 5 }, { 1200000000, 7 } };
	show("utimensat", utimensat(AT_FDCWD, "t.txt", ts, 0));
	struct stat st;
	stat("t.txt", &st);
	printf("atime %ld.%ld mtime %ld.%ld\n", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
	       (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	int fd = open("t.txt", O_RDONLY);
	struct timespec keep[2] = { { 0, UTIME_OMIT }, { 1300000000, 0 } };
	show("futimens", futimens(fd, keep));
	fstat(fd, &st);
	printf("atime kept %d mtime %ld\n", st.st_atim.tv_sec == 1000000000, (long)st.st_mtim.tv_sec);
	show("utimensat missing", utimensat(AT_FDCWD, "none", ts, 0));
	unlink("t.txt");
	return 0;
}
