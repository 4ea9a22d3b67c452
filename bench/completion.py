"""A figure is recorded only for work that completed: every bench/<name>/run.* script checks what
it measured (exit statuses, jobs, rows, requests, files counted) with these before it writes its
section of bench/README.md. The shell scripts' counterpart is bench/completion.sh.
Python 3 standard library only."""
import sys


def require(ok, bench, what):
    """Stops the benchmark (exit status 1, bench/README.md left as it was) unless ok: a run cut
    short (a time limit, a failed job, error responses) measured less work than it claims.
    `what` names the work that did not complete."""
    if not ok:
        sys.stderr.write("bench %s: FAILED: %s; the run did not do all its work, nothing was recorded\n"
                         % (bench, what))
        sys.exit(1)


def require_equal(got, want, bench, what):
    require(got == want, bench, "%s: %r, expected %r" % (what, got, want))
