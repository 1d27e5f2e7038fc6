/* Extended attributes in the working directory: set, get (and the size
 * query), list, remove, by path, by symlink and by fd, and Linux's errors
 * for missing attributes and bad names. Filesystems without user xattrs
 * answer EOPNOTSUPP natively and under hermitux alike. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/xattr.h>
#include "report.h"

int main(void)
{
	char buf[256], longname[300];
	int fd = open("xfile", O_CREAT | O_RDWR | O_TRUNC, 0644);
	symlink("xfile", "xlink");
	show("setxattr", setxattr("xfile", "user.colour", "blue", 4, 0));
	show("setxattr create again", setxattr("xfile", "user.colour", "red", 3, XATTR_CREATE));
	show("setxattr replace missing", setxattr("xfile", "user.size", "1", 1, XATTR_REPLACE));
	show("getxattr size query", getxattr("xfile", "user.colour", NULL, 0));
	memset(buf, 0, sizeof buf);
	show("getxattr", getxattr("xfile", "user.colour", buf, sizeof buf));
	printf("value %s\n", buf);
	show("getxattr too small", getxattr("xfile", "user.colour", buf, 2));
	show("getxattr through symlink", getxattr("xlink", "user.colour", buf, sizeof buf));
	show("lgetxattr on symlink", lgetxattr("xlink", "user.colour", buf, sizeof buf));
	show("getxattr missing", getxattr("xfile", "user.none", buf, sizeof buf));
	show("getxattr no file", getxattr("nofile", "user.colour", buf, sizeof buf));
	show("getxattr empty name", getxattr("xfile", "", buf, sizeof buf));
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = 0;
	memcpy(longname, "user.", 5);
	show("getxattr long name", getxattr("xfile", longname, buf, sizeof buf));
	show("fsetxattr", fsetxattr(fd, "user.other", "x", 1, 0));
	show("listxattr size", listxattr("xfile", NULL, 0));
	long n = listxattr("xfile", buf, sizeof buf);
	int names = 0;
	for (long i = 0; i < n; i += strlen(buf + i) + 1)
		names += !strncmp(buf + i, "user.", 5);
	printf("user names listed %d\n", names);
	show("fgetxattr", fgetxattr(fd, "user.other", buf, sizeof buf));
	show("flistxattr size", flistxattr(fd, NULL, 0));
	show("removexattr", removexattr("xfile", "user.colour"));
	show("removexattr again", removexattr("xfile", "user.colour"));
	show("fremovexattr", fremovexattr(fd, "user.other"));
	show("listxattr after", listxattr("xfile", NULL, 0));
	close(fd);
	unlink("xlink");
	unlink("xfile");
	return 0;
}
