"""How the tree checks of tests/tools end (shared so that every check reads the same in the test
logs): each problem on a FAIL line, then a summary line; the exit status is 1 when there is any."""


def report(problems, summary):
    """Prints problems and summary; returns the exit status (0: none, 1: some)."""
    for p in problems:
        print("FAIL " + p)
    print(summary)
    return 1 if problems else 0
