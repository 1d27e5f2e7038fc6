/* /proc/self/exe is the program: stat through it and stat of argv[0] name
 * the same file (st_dev, st_ino), also where a mount gives the program
 * another path in the guest than on the host. */
#include <stdio.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
	struct stat a, b;
	int r1 = stat("/proc/self/exe", &a), r2 = stat(argv[0], &b);
	printf("stat exe %d, argv[0] %d, the same file %d\n", r1, r2,
	       !r1 && !r2 && a.st_dev == b.st_dev && a.st_ino == b.st_ino);
	return 0;
}
