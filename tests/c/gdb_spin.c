/* Spins until gdb interrupts it (Ctrl-C), then is killed. */
#include <stdio.h>

volatile unsigned long n;

void __attribute__((noinline)) spin(void)
{
	for (;;)
		n++;
}

int main(void)
{
	puts("spinning");
	fflush(stdout);
	spin();
}
