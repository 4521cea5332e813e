"""How a tests/lint check run as a script ends: each problem on stderr, exit 1 when any."""

import sys


def exit_with(problems: list[str]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)
    sys.exit(1 if problems else 0)
