/* Links: counts, reading an unlinked open file, relative symlink chains,
 * readlink truncation, link to a directory. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "report.h"

int main(void)
{
	int fd = open("orig", O_CREAT | O_RDWR | O_TRUNC, 0644);
	write(fd, "data", 4);
	link("orig", "hard");
	struct stat st;
	fstat(fd, &st);
	printf("nlink %ld\n", (long)st.st_nlink);
	unlink("orig");
	unlink("hard");
	fstat(fd, &st);
	char buf[8] = { 0 };
	pread(fd, buf, 4, 0);
	printf("after unlink nlink %ld still reads %s\n", (long)st.st_nlink, buf);
	close(fd);
	mkdir("dir", 0755);
	close(open("dir/target", O_CREAT | O_WRONLY, 0644));
	symlink("dir/target", "l1");
	symlink("l1", "l2");
	symlink("../l2", "dir/l3");
	show("open through a chain", (fd = open("dir/l3", O_RDONLY)) >= 0 ? 0 : -1);
	close(fd);
	char small[4];
	show("readlink truncated", readlink("l1", small, sizeof small));
	show("hard link to a dir", link("dir", "dirlink"));
	show("symlink over existing", symlink("x", "l1"));
	unlink("dir/l3"), unlink("l2"), unlink("l1"), unlink("dir/target"), rmdir("dir");
	return 0;
}
