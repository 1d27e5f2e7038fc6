/* OpenMP: a parallel for with a reduction, a critical section and a
 * parallel region reporting its team size. */
#include <omp.h>
#include <stdio.h>

int main(void) {
	long sum = 0;
	double harmonic = 0;
#pragma omp parallel for reduction(+ : sum, harmonic)
	for (long i = 1; i <= 2000000; i++) {
		sum += i % 7;
		harmonic += 1.0 / (double)i;
	}
	int members = 0;
#pragma omp parallel
	{
#pragma omp critical
		members++;
	}
	printf("sum %ld harmonic %.6f team matches %d\n", sum, harmonic, members == omp_get_max_threads());
	return 0;
}
