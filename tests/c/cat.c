/* Copies stdin to stdout with read/write, and counts bytes on stderr. */
#include <unistd.h>
#include <stdio.h>
int main(void)
{
	char buf[4096];
	long n, total = 0;
	while ((n = read(0, buf, sizeof buf)) > 0) {
		if (write(1, buf, n) != n) return 2;
		total += n;
	}
	fprintf(stderr, "%ld bytes\n", total);
	return n < 0;
}
