/* Thread-local storage through the FS base that arch_prctl sets. */
#include <stdio.h>
__thread int counter = 41;
__thread char name[16] = "tls";
int main(void)
{
	counter++;
	printf("%s %d\n", name, counter);
	return counter == 42 ? 0 : 1;
}
