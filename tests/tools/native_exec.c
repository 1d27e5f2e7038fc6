/* Runs argv[1..] with only fds 0-2 open. A CI harness (or Deno itself) may
 * leak descriptors into children; a native run that inherits them numbers
 * its own fds differently from the guest, which starts with 0-2 only. */
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	/* glibc 2.34+: closes every fd from 3 up, whatever was inherited. */
	closefrom(3);
	execv(argv[1], argv + 1);
	perror(argv[1]);
	return 127;
}
