/* Thread-local storage through the FS base that arch_prctl sets, and
 * ARCH_GET_FS reading back what ARCH_SET_FS set. */
#include <stdio.h>
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
__thread int counter = 41;
__thread char name[16] = "tls";

/* Raw, so that nothing touches TLS (errno) while the FS base is borrowed. */
static long arch_prctl(long code, unsigned long addr)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "0"(158L), "D"(code), "S"(addr) : "rcx", "r11", "memory");
	return r;
}

/* What the FS base points at: both libcs keep a self pointer at %fs:0. */
static unsigned long fs_self(void)
{
	unsigned long v;
	__asm__ volatile("mov %%fs:0, %0" : "=r"(v));
	return v;
}

static unsigned long fake_tcb[8];

int main(void)
{
	counter++;
	printf("%s %d\n", name, counter);
	unsigned long fs = 0, got = 0, self = 0;
	long r1 = arch_prctl(ARCH_GET_FS, (unsigned long)&fs);
	printf("ARCH_GET_FS %ld, is the TLS pointer %d, below it %d\n", r1, fs != 0 && fs == fs_self(),
	       (unsigned long)&counter < fs && fs - (unsigned long)&counter < 4096);
	/* Borrow the FS base: set another, read it back both ways, restore. */
	fake_tcb[0] = (unsigned long)fake_tcb;
	long r2 = arch_prctl(ARCH_SET_FS, (unsigned long)fake_tcb);
	long r3 = arch_prctl(ARCH_GET_FS, (unsigned long)&got);
	self = fs_self();
	long r4 = arch_prctl(ARCH_SET_FS, fs);
	printf("ARCH_SET_FS %ld %ld, ARCH_GET_FS %ld returns it %d, %%fs:0 follows %d\n", r2, r4, r3,
	       got == (unsigned long)fake_tcb, self == (unsigned long)fake_tcb);
	printf("restored %d\n", fs_self() == fs && counter == 42);
	return counter == 42 ? 0 : 1;
}
