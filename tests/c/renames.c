/* rename semantics: replace a file, directories over non-empty ones, a
 * directory into itself, RENAME_NOREPLACE and RENAME_EXCHANGE. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "report.h"

static void put(const char *path, const char *text)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	write(fd, text, 1);
	close(fd);
}

static char first(const char *path)
{
	char c = '?';
	int fd = open(path, O_RDONLY);
	read(fd, &c, 1);
	close(fd);
	return c;
}

int main(void)
{
	put("a", "A");
	put("b", "B");
	show("rename over a file", rename("a", "b"));
	printf("b holds %c\n", first("b"));
	mkdir("d1", 0755);
	mkdir("d2", 0755);
	put("d2/x", "X");
	show("dir over non-empty dir", rename("d1", "d2"));
	show("dir into itself", rename("d1", "d1/sub"));
	show("file over dir", rename("b", "d1"));
	put("c", "C");
	show("NOREPLACE existing", syscall(SYS_renameat2, AT_FDCWD, "c", AT_FDCWD, "b", 1));
	show("EXCHANGE", syscall(SYS_renameat2, AT_FDCWD, "c", AT_FDCWD, "b", 2));
	printf("after exchange b %c c %c\n", first("b"), first("c"));
	show("missing source", rename("nope", "x"));
	unlink("b"), unlink("c"), unlink("d2/x"), rmdir("d1"), rmdir("d2");
	return 0;
}
