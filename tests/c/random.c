/* getrandom: sizes, flags, two draws differ, bad flags EINVAL. */
#include <string.h>
#include <sys/random.h>
#include "report.h"

int main(void)
{
	unsigned char a[64], b[64];
	show("getrandom 64", getrandom(a, sizeof a, 0));
	show("getrandom nonblock", getrandom(b, sizeof b, GRND_NONBLOCK));
	printf("draws differ %d\n", memcmp(a, b, sizeof a) != 0);
	show("getrandom 0 bytes", getrandom(a, 0, 0));
	show("bad flags", getrandom(a, 8, 0x100));
	show("bad pointer", getrandom((void *)8, 8, 0));
	return 0;
}
