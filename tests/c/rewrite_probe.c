/* Looks at its own syscall site after using it: "0f 05" natively (and
 * without rewriting), "ff d0" once hermitux rewrote it into call *%rax.
 * Also makes calls with numbers past the trampoline's sled, which must
 * still return ENOSYS. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>

extern const unsigned char probe_site[];

__attribute__((noinline)) static long probe(long nr)
{
	long ret;
	__asm__ volatile(".globl probe_site\nprobe_site:\n\tsyscall"
			 : "=a"(ret) : "a"(nr) : "rcx", "r11", "memory");
	return ret;
}

int main(void)
{
	long a = probe(SYS_getpid), b = probe(SYS_getpid);
	printf("getpid twice agree %d\n", a == b && a == getpid());
	printf("site %02x %02x\n", probe_site[0], probe_site[1]);
	printf("nr 600: %ld\n", probe(600));
	printf("nr 100000: %ld\n", probe(100000));
	printf("nr -1: %ld\n", probe(-1));
	printf("getpid again agree %d\n", probe(SYS_getpid) == getpid());
	return 0;
}
