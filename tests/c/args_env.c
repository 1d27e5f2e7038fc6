/* Prints argv and the environment in order. */
#include <stdio.h>
extern char **environ;
int main(int argc, char **argv)
{
	printf("argc=%d\n", argc);
	for (int i = 1; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
	for (char **e = environ; *e; e++) printf("env %s\n", *e);
	fprintf(stderr, "to stderr\n");
	return 0;
}
