/* statfs/fstatfs of the working directory agree with each other; bad paths. */
#include <fcntl.h>
#include <sys/statfs.h>
#include <unistd.h>
#include "report.h"

int main(void)
{
	struct statfs a, b;
	show("statfs .", statfs(".", &a));
	int fd = open(".", O_RDONLY | O_DIRECTORY);
	show("fstatfs", fstatfs(fd, &b));
	printf("same type %d bsize %d\n", a.f_type == b.f_type, a.f_bsize == b.f_bsize);
	show("statfs missing", statfs("no/such/dir", &a));
	return 0;
}
