"""cputime.py OUT COMMAND...: runs COMMAND and writes "wall user sys maxrss_kb" to OUT, from
wait4 (microsecond resolution, where /usr/bin/time rounds to 10 ms). Its exit status is the
command's. With CPUTIME_STDOUT=PATH the command's stdout goes to PATH (else it is inherited).
Python 3 standard library only."""
import os
import sys
import time

out, cmd = sys.argv[1], sys.argv[2:]
start = time.monotonic()
pid = os.fork()
if pid == 0:
    target = os.environ.get("CPUTIME_STDOUT")
    if target:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.monotonic() - start
with open(out, "w") as f:
    f.write("%.4f %.4f %.4f %d\n" % (wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
