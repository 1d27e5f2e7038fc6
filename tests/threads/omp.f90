! OpenMP in Fortran: a parallel do with reductions.
program omp_sum
  use omp_lib
  implicit none
  integer(8) :: i, total
  real(8) :: s
  total = 0
  s = 0d0
  !$omp parallel do reduction(+:total, s)
  do i = 1, 2000000
    total = total + mod(i, 5_8)
    s = s + 1d0 / dble(i)
  end do
  !$omp end parallel do
  print '(A, I0, A, F12.6)', 'total ', total, ' s ', s
end program omp_sum
