/* Prints getpid() and writes through fd 1: for registry overrides. */
#include <stdio.h>
#include <unistd.h>
int main(void) { printf("pid %d\n", getpid()); return 7; }
