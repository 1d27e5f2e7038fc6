# Runs argv on a new pseudo-terminal, types $PTY_INPUT into it and prints
# what the terminal showed, then the exit status (tests/tty_test.ts).
import os, pty, select, sys
argv = sys.argv[1:]
script = os.environ["PTY_INPUT"].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
os.write(fd, script)
out = b""
while True:
    r, _, _ = select.select([fd], [], [], 60)
    if not r:
        break
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    out += d
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.stdout.write("\nstatus %d\n" % os.waitstatus_to_exitcode(st))
