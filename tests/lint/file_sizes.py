"""No source file grows past what one person reads at a sitting (CONTRIBUTING.md, "Style").

The rule: a source file tracked by git (Rust, Python, shell, Go, JavaScript) has at most 1,000
lines; a file of the e2e helpers (`tests/src/`) at most 600, since every test reads them. A
file over its limit is named with its count and the limit, so it gets split by what its parts
do rather than trimmed.

    python3 tests/lint/file_sizes.py     prints the files over their limit; exit 1 if any
"""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCE_SUFFIXES = (".rs", ".py", ".sh", ".go", ".js", ".mjs")
LIMIT = 1000
# Read by every e2e test: kept smaller.
LIMITS_BY_FOLDER = {"tests/src/": 600}


def limit_of(path: str) -> int:
    for folder, limit in LIMITS_BY_FOLDER.items():
        if path.startswith(folder):
            return limit
    return LIMIT


def tracked(repo: Path) -> list[str]:
    out = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "--cached", "--others", "--exclude-standard"],
        check=True, capture_output=True, text=True,
    ).stdout
    return [p for p in out.splitlines() if p.endswith(SOURCE_SUFFIXES)]


def problems(repo: Path, paths: list[str]) -> list[str]:
    found = []
    for path in sorted(paths):
        file = repo / path
        if not file.is_file():
            continue
        with open(file, "rb") as f:
            lines = sum(1 for _ in f)
        limit = limit_of(path)
        if lines > limit:
            found.append(f"{path}: {lines} lines, over the limit of {limit}: split it by what its parts do")
    return found


def main() -> int:
    found = problems(REPO, tracked(REPO))
    for p in found:
        print(p)
    print(f"file sizes: {len(found)} file(s) over their limit", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
