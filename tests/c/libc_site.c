/* Prints the syscall instruction inside the C library's syscall(): "0f 05"
 * natively, "ff d0" once rewritten. In a dynamic program that code is in
 * libc.so, which ld.so maps after boot. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
	/* Through a volatile pointer: the library's own code, not a PLT stub. */
	long (*volatile f)(long, ...) = syscall;
	const unsigned char *p = (const unsigned char *)f;
	for (int i = 0; i < 64; i++) {
		if ((p[i] == 0x0f && p[i + 1] == 0x05) || (p[i] == 0xff && p[i + 1] == 0xd0)) {
			printf("libc site %02x %02x\n", p[i], p[i + 1]);
			return 0;
		}
	}
	printf("libc site not found\n");
	return 0;
}
