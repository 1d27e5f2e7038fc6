/* /proc/self/fd lists the open fds; each entry's link names its file. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "report.h"

int main(void)
{
	int a = open("one.txt", O_CREAT | O_RDWR, 0644);
	int b = dup(a);
	DIR *d = opendir("/proc/self/fd");
	int n = 0, sawA = 0, sawB = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.') continue;
		n++;
		sawA |= atoi(e->d_name) == a;
		sawB |= atoi(e->d_name) == b;
	}
	printf("entries >= 5 %d, a listed %d, b listed %d\n", n >= 5, sawA, sawB);
	closedir(d);
	char path[64], target[512];
	snprintf(path, sizeof path, "/proc/self/fd/%d", b);
	ssize_t len = readlink(path, target, sizeof target - 1);
	target[len > 0 ? len : 0] = 0;
	printf("dup links to one.txt %d\n", len > 7 && !strcmp(target + len - 7, "one.txt"));
	show("closed fd link", readlink("/proc/self/fd/77", target, sizeof target));
	unlink("one.txt");
	return 0;
}
