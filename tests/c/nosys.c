/* An unsupported syscall returns ENOSYS (named once on stderr by hermitux). */
#include <stdio.h>
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(void)
{
	for (int i = 0; i < 3; i++) {
		long r = syscall(SYS_add_key, 0, 0, 0, 0, 0);
		printf("add_key = %ld errno %s\n", r, errno == ENOSYS ? "ENOSYS" : "other");
	}
	return 0;
}
