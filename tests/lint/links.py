"""Relative links of the project's Markdown files lead somewhere.

A link `[text](path)` or `[text](path#anchor)` that is not a URL must name a file of the
repository, and its anchor a heading of that file (GitHub's slug: lower case, punctuation
dropped, spaces as hyphens). Links inside code are not links.

    python3 tests/lint/links.py     prints the broken links
"""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# A fence: up to three spaces, then backticks (no backtick after them: CommonMark) or tildes.
FENCE = re.compile(r"^ {0,3}(`{3,}(?=[^`]*$)|~{3,})")


def documents(repo: Path) -> list[Path]:
    found = [repo / name for name in ("README.md", "CONTRIBUTING.md", "SECURITY.md",
                                       "BENCHMARKS.md", "CHANGELOG.md")]
    found += sorted((repo / "docs").rglob("*.md"))
    found += sorted((repo / "charts").rglob("README.md"))
    return [p for p in found if p.is_file()]


def prose(text: str, keep_code: bool = False) -> list[tuple[int, str]]:
    """The lines outside fenced code, with inline code removed (or only its backticks), and
    their numbers."""
    lines, fence = [], None
    for n, line in enumerate(text.splitlines(), start=1):
        opening = FENCE.match(line)
        if opening and (fence is None or opening[1].startswith(fence)):
            fence = None if fence else opening[1]
            continue
        if fence is None:
            lines.append((n, line.replace("`", "") if keep_code
                          else re.sub(r"(`+)(?:(?!\1).)*\1", "", line)))
    return lines


def slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    return {slug(m[1]) for _, line in prose(text, keep_code=True)
            if (m := re.match(r"#{1,6} (.*)", line))}


def check(repo: Path) -> list[str]:
    found = []
    for document in documents(repo):
        text = document.read_text()
        for n, line in prose(text):
            for target in LINK.findall(line):
                if re.match(r"[a-z]+:", target):
                    continue
                path, _, anchor = target.partition("#")
                resolved = (document.parent / path).resolve() if path else document
                where = f"{document.relative_to(repo)}:{n}"
                if not resolved.exists():
                    found.append(f"{where}: {target}: no such file")
                elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
                    found.append(f"{where}: {target}: no heading #{anchor} in {path or 'this file'}")
    return found


if __name__ == "__main__":
    from report import exit_with

    exit_with(check(REPO))
