! Formatted I/O, arrays, an internal file and a file written then read back:
! libgfortran's runtime under hermitux.
program fortran_io
  implicit none
  integer :: i, n, ios
  real(8) :: x(5), total
  character(len=32) :: line
  do i = 1, 5
    x(i) = sqrt(real(i, 8))
  end do
  total = sum(x)
  write (*, '(A, 5F8.4)') 'roots:', x
  write (*, '(A, ES12.4)') 'sum:', total
  write (line, '(I5, A, I3)') 42, ' and ', 7
  print *, trim(line)
  open (unit=10, file='fortran_io.tmp', status='replace', action='write')
  do i = 1, 3
    write (10, '(I3, F6.2)') i, x(i)
  end do
  close (10)
  open (unit=10, file='fortran_io.tmp', status='old', action='read')
  n = 0
  do
    read (10, *, iostat=ios) i, total
    if (ios /= 0) exit
    n = n + 1
  end do
  close (10, status='delete')
  print '(A, I0)', 'lines read back: ', n
  stop 0
end program fortran_io
