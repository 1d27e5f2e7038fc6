/* A directory of 200 entries read back with readdir (getdents64), sorted;
 * rewinddir; ENOTDIR and ENOENT. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "report.h"

static int cmp(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

int main(void)
{
	char name[64];
	mkdir("many", 0755);
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof name, "many/entry-%03d", i);
		close(open(name, O_CREAT | O_WRONLY, 0644));
	}
	DIR *d = opendir("many");
	char *names[256];
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') names[n++] = strdup(e->d_name);
	qsort(names, n, sizeof *names, cmp);
	printf("entries %d first %s last %s\n", n, names[0], names[n - 1]);
	rewinddir(d);
	int again = 0;
	while ((e = readdir(d))) again++;
	printf("after rewind %d\n", again);
	closedir(d);
	show("opendir a file", opendir("many/entry-001") ? 0 : -1);
	show("opendir missing", opendir("none") ? 0 : -1);
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof name, "many/entry-%03d", i);
		unlink(name);
	}
	show("rmdir emptied", rmdir("many"));
	return 0;
}
