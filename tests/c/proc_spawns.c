/* posix_spawn (clone(CLONE_VM | CLONE_VFORK) in glibc and musl) of itself,
 * argv[1] times; each child exits 0 at once. Prints how many failed. */
#include <spawn.h>
#include <stdlib.h>
#include "proc.h"

extern char **environ;

int main(int argc, char **argv)
{
	if (argc < 2)
		return 0;
	int n = atoi(argv[1]), failed = 0;
	char *args[] = { argv[0], NULL };
	for (int i = 0; i < n; i++) {
		pid_t c;
		int st;
		if (posix_spawn(&c, argv[0], NULL, NULL, args, environ) ||
		    waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st))
			failed++;
	}
	say("spawns %d, failed %d\n", n, failed);
	return 0;
}
