/* open flags: O_APPEND, O_EXCL, O_TRUNC, O_DIRECTORY, O_NOFOLLOW,
 * O_CLOEXEC as fcntl shows it, access modes and their errors. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "report.h"

int main(void)
{
	int fd = open("f.txt", O_CREAT | O_WRONLY | O_TRUNC, 0644);
	write(fd, "abc", 3);
	close(fd);
	fd = open("f.txt", O_WRONLY | O_APPEND);
	lseek(fd, 0, SEEK_SET);
	write(fd, "def", 3);
	close(fd);
	struct stat st;
	stat("f.txt", &st);
	printf("append size %ld\n", (long)st.st_size);
	show("O_EXCL existing", open("f.txt", O_CREAT | O_EXCL | O_WRONLY, 0644));
	fd = open("f.txt", O_WRONLY | O_TRUNC);
	fstat(fd, &st);
	printf("truncated size %ld\n", (long)st.st_size);
	close(fd);
	show("O_DIRECTORY on a file", open("f.txt", O_RDONLY | O_DIRECTORY));
	symlink("f.txt", "l");
	show("O_NOFOLLOW on a link", open("l", O_RDONLY | O_NOFOLLOW));
	fd = open("f.txt", O_RDONLY | O_CLOEXEC);
	show("FD_CLOEXEC set", fcntl(fd, F_GETFD));
	show("write on O_RDONLY", write(fd, "x", 1));
	char c;
	int w = open("f.txt", O_WRONLY);
	show("read on O_WRONLY", read(w, &c, 1));
	show("open dir for writing", open(".", O_WRONLY));
	show("bad flags O_RDWR|O_WRONLY", open("f.txt", O_RDWR | O_WRONLY) >= 0 ? 0 : -1);
	unlink("l");
	unlink("f.txt");
	return 0;
}
