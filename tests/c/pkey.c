/* Protection keys: none, as on a CPU without PKU (the guest never enables
 * them), so pkey_alloc and pkey_free are EINVAL. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
	long r = syscall(SYS_pkey_alloc, 0, 0);
	printf("pkey_alloc: %ld %s\n", r, r < 0 ? strerror(errno) : "");
	r = syscall(SYS_pkey_alloc, 1, 0);
	printf("pkey_alloc bad flags: %ld %s\n", r, r < 0 ? strerror(errno) : "");
	r = syscall(SYS_pkey_free, 1);
	printf("pkey_free: %ld %s\n", r, r < 0 ? strerror(errno) : "");
	return 0;
}
