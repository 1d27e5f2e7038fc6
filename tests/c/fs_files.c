/* Files in the working directory: create, read, write, seek, stat, rename,
 * link, symlink, directories, permissions, dup/fcntl, pipes, errno values. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void r(const char *what, long v) { printf("%-28s %ld %s\n", what, v, v < 0 ? strerror(errno) : ""); errno = 0; }

int main(void)
{
	char buf[128];
	struct stat st;
	int fd = open("a.txt", O_CREAT | O_RDWR | O_TRUNC, 0640);
	r("open create", fd >= 3);
	r("write", write(fd, "0123456789", 10));
	r("lseek set 2", lseek(fd, 2, SEEK_SET));
	r("read 3", read(fd, buf, 3));
	printf("data %.3s\n", buf);
	r("pwrite at 8", pwrite(fd, "XY", 2, 8));
	r("pread at 7", pread(fd, buf, 4, 7));
	printf("data %.3s\n", buf);
	r("lseek end", lseek(fd, 0, SEEK_END));
	r("fstat", fstat(fd, &st));
	printf("size %ld mode %o reg %d\n", (long)st.st_size, st.st_mode & 0777, S_ISREG(st.st_mode));
	r("ftruncate 4", ftruncate(fd, 4));
	r("fsync", fsync(fd));
	r("stat after truncate", stat("a.txt", &st));
	printf("size %ld\n", (long)st.st_size);
	int d = dup(fd);
	r("dup", d > fd);
	r("dup shares offset", lseek(d, 1, SEEK_SET) == lseek(fd, 0, SEEK_CUR));
	r("dup2 to 10", dup2(fd, 10));
	r("F_GETFD", fcntl(10, F_GETFD));
	r("F_SETFD cloexec", fcntl(10, F_SETFD, FD_CLOEXEC));
	r("F_GETFD again", fcntl(10, F_GETFD));
	r("F_DUPFD >= 20", fcntl(fd, F_DUPFD, 20));
	r("F_GETFL rdwr", fcntl(fd, F_GETFL) & O_ACCMODE);
	r("close dup", close(d));
	r("close twice", close(d));
	r("close", close(fd));
	r("open missing", open("missing.txt", O_RDONLY));
	r("open excl existing", open("a.txt", O_CREAT | O_EXCL | O_WRONLY, 0600));
	r("mkdir", mkdir("dir", 0750));
	r("mkdir again", mkdir("dir", 0750));
	r("rename into dir", rename("a.txt", "dir/b.txt"));
	r("link", link("dir/b.txt", "dir/c.txt"));
	r("stat nlink", stat("dir/b.txt", &st));
	printf("nlink %ld\n", (long)st.st_nlink);
	r("symlink", symlink("dir/b.txt", "s"));
	ssize_t n = readlink("s", buf, sizeof buf);
	r("readlink", n);
	printf("target %.*s\n", (int)n, buf);
	r("lstat is link", lstat("s", &st) == 0 && S_ISLNK(st.st_mode));
	r("stat via link is reg", stat("s", &st) == 0 && S_ISREG(st.st_mode));
	r("symlink loop", symlink("loop", "loop"));
	r("open loop", open("loop", O_RDONLY));
	r("open through file", open("dir/b.txt/x", O_RDONLY));
	r("rmdir non-empty", rmdir("dir"));
	r("unlink dir", unlink("dir"));
	r("chmod", chmod("dir/b.txt", 0600));
	r("stat mode", stat("dir/b.txt", &st));
	printf("mode %o\n", st.st_mode & 0777);
	r("access R", access("dir/b.txt", R_OK));
	r("access missing", access("nope", F_OK));
	DIR *dir = opendir("dir");
	int count = 0;
	struct dirent *e;
	while ((e = readdir(dir))) count += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(dir);
	printf("dir entries %d\n", count);
	r("chdir dir", chdir("dir"));
	char cwd[512];
	getcwd(cwd, sizeof cwd);
	printf("cwd ends with /dir %d\n", strlen(cwd) > 4 && !strcmp(cwd + strlen(cwd) - 4, "/dir"));
	r("open relative", (fd = open("c.txt", O_RDONLY)) >= 0);
	close(fd);
	r("chdir ..", chdir(".."));
	int dfd = open("dir", O_RDONLY | O_DIRECTORY);
	r("openat dirfd", (fd = openat(dfd, "b.txt", O_RDONLY)) >= 0);
	close(fd);
	r("fstatat dirfd", fstatat(dfd, "c.txt", &st, 0));
	r("unlinkat", unlinkat(dfd, "c.txt", 0));
	r("fchdir", fchdir(dfd));
	r("stat b here", stat("b.txt", &st));
	chdir("..");
	close(dfd);
	int p[2];
	r("pipe", pipe(p));
	r("pipe write", write(p[1], "ping", 4));
	r("pipe read", read(p[0], buf, sizeof buf));
	close(p[0]);
	close(p[1]);
	r("cleanup", unlink("dir/b.txt") | unlink("s") | unlink("loop") | rmdir("dir"));
	r("bad fd", write(99, "x", 1));
	r("bad path pointer", open((char *)8, O_RDONLY));
	return 0;
}
