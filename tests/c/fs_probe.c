#define _GNU_SOURCE
/* Tries one operation per argument and prints its errno name, for the
 * mount-table security tests: "open:PATH", "create:PATH", "mkdir:PATH",
 * "unlink:PATH", "rename:FROM:TO", "symlink:TARGET:PATH", "stat:PATH",
 * "read:PATH" (prints the first line), "chdir:PATH", "cwd", "readlink:PATH",
 * "realpath:PATH" (prints the path). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *name(int e)
{
	switch (e) {
	case 0: return "OK";
	case ENOENT: return "ENOENT";
	case EROFS: return "EROFS";
	case EACCES: return "EACCES";
	case ELOOP: return "ELOOP";
	case ENOTDIR: return "ENOTDIR";
	case EXDEV: return "EXDEV";
	case EEXIST: return "EEXIST";
	case EFAULT: return "EFAULT";
	case EINVAL: return "EINVAL";
	default: return strerror(e);
	}
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		char op[64], a[512] = "", b[512] = "";
		sscanf(argv[i], "%63[^:]:%511[^:]:%511s", op, a, b);
		errno = 0;
		int fd;
		struct stat st;
		char line[256] = "";
		if (!strcmp(op, "open")) {
			if ((fd = open(a, O_RDONLY)) >= 0) close(fd);
		} else if (!strcmp(op, "read")) {
			if ((fd = open(a, O_RDONLY)) >= 0) {
				ssize_t n = read(fd, line, sizeof line - 1);
				line[n > 0 ? n : 0] = 0;
				*strchrnul(line, '\n') = 0;
				close(fd);
			}
		} else if (!strcmp(op, "create")) {
			if ((fd = open(a, O_CREAT | O_WRONLY, 0644)) >= 0) close(fd);
		} else if (!strcmp(op, "mkdir")) mkdir(a, 0755);
		else if (!strcmp(op, "unlink")) unlink(a);
		else if (!strcmp(op, "rename")) rename(a, b);
		else if (!strcmp(op, "symlink")) symlink(a, b);
		else if (!strcmp(op, "stat")) stat(a, &st);
		else if (!strcmp(op, "chdir")) chdir(a);
		else if (!strcmp(op, "cwd")) getcwd(line, sizeof line);
		else if (!strcmp(op, "readlink")) readlink(a, line, sizeof line - 1);
		else if (!strcmp(op, "realpath")) {
			char rp[PATH_MAX];
			if (realpath(a, rp)) {
				snprintf(line, sizeof line, "%s", rp);
				errno = 0;
			}
		}
		printf("%s %s%s%s\n", argv[i], name(errno), line[0] ? " " : "", line);
	}
	return 0;
}
