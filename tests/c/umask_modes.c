/* The umask shapes the modes of new files and directories, exactly. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static void made(const char *what, const char *path)
{
	struct stat st;
	stat(path, &st);
	printf("%s %o\n", what, st.st_mode & 07777);
}

int main(void)
{
	printf("default umask %o\n", umask(0));
	close(open("f0", O_CREAT | O_WRONLY, 0666));
	made("file with umask 0", "f0");
	mkdir("d0", 0777);
	made("dir with umask 0", "d0");
	umask(077);
	close(open("f77", O_CREAT | O_WRONLY, 0666));
	made("file with umask 077", "f77");
	mkdir("d77", 0777);
	made("dir with umask 077", "d77");
	umask(022);
	close(creat("c22", 0755));
	made("creat with umask 022", "c22");
	unlink("f0"), unlink("f77"), unlink("c22"), rmdir("d0"), rmdir("d77");
	return 0;
}
