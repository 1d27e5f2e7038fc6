/* The few C library routines gcc may emit calls to. */
#include "kernel.h"

void *memset(void *d, int c, size_t n)
{
	void *r = d;
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return r;
}

void *memcpy(void *d, const void *s, size_t n)
{
	void *r = d;
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return r;
}

/* A user buffer must lie in user memory: never in the kernel's pages. */
/* Whether [addr, addr + len) lies in the address space above RAM. */
int in_high(u64 addr, u64 len)
{
	return BOOT->high_max && addr >= BOOT->high_min && addr + len >= addr &&
	       addr + len <= BOOT->high_max;
}

int user_ok(u64 addr, u64 len)
{
	return (addr >= USER_MIN && addr + len >= addr && addr + len <= BOOT->mem_size) ||
	       in_high(addr, len);
}
