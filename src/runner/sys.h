/* A raw Linux syscall (x86-64 ABI): the blobs here have no libc. */
#ifndef HERMITUX_RUNNER_SYS_H
#define HERMITUX_RUNNER_SYS_H

static inline long sys(long nr, long a, long b, long c, long d)
{
	register long r10 __asm__("r10") = d;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret;
}

#endif
