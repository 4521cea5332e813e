"""Transcripts in README.md, CONTRIBUTING.md and docs/ against what `make demo` recorded.

`make demo` (tests/env/run/demo.sh) records every command it shows, with its output, in
docs/transcripts/NAME.txt. A document quotes one by putting a marker right before a fenced block:

    <!-- transcript: NAME -->            the block is the whole recording
    <!-- transcript: NAME head=N -->     the block is its first N lines, then a line `...`

Both sides are normalised before they are compared (`normalise`): what differs from run to run
(clock times, ages, uids, epoch-second name suffixes, generated name suffixes, sha256 sums,
sizes in bytes, URL query strings and ports, durations, column padding) becomes a placeholder,
so a quote from an older run still matches; a column added, a line changed or gone does not.

Every ```console block must be such a quote: console blocks show output, and output shown in
the docs comes from a run. Commands to type without output go in ```sh blocks.

    python3 tests/lint/transcripts.py           check (what `make lint` runs through unittest)
    python3 tests/lint/transcripts.py --write   replace each quoted block with its recording
"""

import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECORDINGS = Path("docs/transcripts")

MARKER = re.compile(r"^<!-- transcript: (?P<name>[a-z0-9-]+)(?: head=(?P<head>\d+))? -->$")
FENCE = re.compile(r"^(?P<fence>`{3,})(?P<lang>[a-z]*)\s*$")

# What changes from one run of the demo to the next, most specific first.
VARIABLE = [
    (re.compile(r"\b[0-9a-f]{64}\b"), "<sha256>"),
    (re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)"), "<time>"),
    (re.compile(r"\b\d\d:\d\d:\d\d\b"), "<clock>"),
    # A URL's query string holds its signature and expiry; its port is the local emulator's.
    (re.compile(r"(https?://[^\s?\"'`)]+)\?[^\s\"'`)]*"), r"\1?<query>"),
    (re.compile(r"\b(127\.0\.0\.1|localhost):\d+"), r"\1:<port>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uid>"),
    # The demo names its namespaces, backup and restore after the epoch second.
    (re.compile(r"\b1\d{9}\b"), "<epoch>"),
    # generateName's suffix: five of Kubernetes' consonants and digits.
    (re.compile(r"-[bcdfghjklmnpqrstvwxz2456789]{5}\b"), "-<suffix>"),
    # The archive's key ends in the bundle's uid, cut short.
    (re.compile(r"-[0-9a-f]{8}(?=\.tar\.gz)"), "-<uid>"),
    # Sizes and counts that follow what the environment holds (logs, locations, pods).
    (re.compile(r"\b\d+(?:/\d+)? bytes\b"), "<n> bytes"),
    (re.compile(r"\b\d+(?:\.\d+)? (?:B|KiB|MiB|GiB|TiB)\b"), "<size>"),
    (re.compile(r"\b\d+ files\b"), "<n> files"),
    # Durations and kubectl's ages (2 s, 1.5s, 40ms, 3m10s, 2h, 4d): one placeholder, as an
    # age of 59s is 1m in the next run.
    (re.compile(r"\b\d+(?:\.\d+)?(?: s|ms|[smhd])(?:\d+[smh])?\b"), "<duration>"),
]
# A table's SIZE column and the like: a number of bytes alone between columns.
BYTES_CELL = re.compile(r"(?<=\s)\d{4,}(?=\s|$)")


def normalise(text: str) -> list[str]:
    """The lines of `text` with every run-to-run difference replaced by a placeholder."""
    lines = []
    for line in text.splitlines():
        for pattern, placeholder in VARIABLE:
            line = pattern.sub(placeholder, line)
        line = BYTES_CELL.sub("<n>", line)
        # Column padding follows the widest cell, which the placeholders hid.
        lines.append(re.sub(r"[ \t]+", " ", line).strip())
    while lines and not lines[-1]:
        lines.pop()
    return lines


@dataclass
class Quote:
    """A fenced block in a document."""

    document: Path
    line: int  # 1-based line of the opening fence
    lang: str
    body: list[str]
    name: str | None  # the recording it quotes, when marked
    head: int | None
    body_start: int  # index into the document's lines of the body's first line
    body_end: int  # index of the closing fence


def blocks(document: Path, text: str) -> list[Quote]:
    """Every fenced block of a Markdown document, with the transcript marker before it."""
    lines = text.splitlines()
    found = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence = opening["fence"]
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != fence:
            j += 1
        previous = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        marker = MARKER.match(previous.strip())
        found.append(Quote(
            document=document,
            line=i + 1,
            lang=opening["lang"],
            body=lines[i + 1:j],
            name=marker["name"] if marker else None,
            head=int(marker["head"]) if marker and marker["head"] else None,
            body_start=i + 1,
            body_end=j,
        ))
        i = j + 1
    return found


def expected_body(recording: str, head: int | None) -> list[str]:
    """What a quote of `recording` shows: all of it, or its first `head` lines and `...`."""
    lines = recording.rstrip("\n").splitlines()
    if head is None:
        return lines
    return lines[:head] + ["..."]


def problems(quote: Quote, recordings: dict[str, str]) -> list[str]:
    """Why `quote` is not what the demo recorded (empty when it is)."""
    where = f"{quote.document}:{quote.line}"
    if quote.name is None:
        if quote.lang == "console":
            return [f"{where}: a console block that quotes no recording; put "
                    "`<!-- transcript: NAME -->` before it (docs/transcripts/NAME.txt), "
                    "or show commands without output in a sh block"]
        return []
    if quote.name not in recordings:
        return [f"{where}: no recording {RECORDINGS}/{quote.name}.txt; run `make demo`"]
    want = normalise("\n".join(expected_body(recordings[quote.name], quote.head)))
    have = normalise("\n".join(quote.body))
    if want == have:
        return []
    for n, (w, h) in enumerate(zip(want, have)):
        if w != h:
            return [f"{where}: transcript {quote.name} differs from its recording at line "
                    f"{n + 1}:\n  recorded: {w}\n  quoted:   {h}\n"
                    "  (`python3 tests/lint/transcripts.py --write` takes the recording)"]
    return [f"{where}: transcript {quote.name} has {len(have)} lines, its recording "
            f"{len(want)} (`python3 tests/lint/transcripts.py --write` takes the recording)"]


def documents(repo: Path) -> list[Path]:
    """README.md, CONTRIBUTING.md and the Markdown files under docs/."""
    found = [repo / "README.md", repo / "CONTRIBUTING.md"]
    found += sorted(p for p in (repo / "docs").rglob("*.md"))
    return [p for p in found if p.is_file()]


def load_recordings(repo: Path) -> dict[str, str]:
    folder = repo / RECORDINGS
    return {p.stem: p.read_text() for p in sorted(folder.glob("*.txt"))}


def check(repo: Path) -> list[str]:
    """Every problem of every document's quotes, and recordings no document quotes."""
    recordings = load_recordings(repo)
    found, quoted = [], set()
    for document in documents(repo):
        for quote in blocks(document.relative_to(repo), document.read_text()):
            found += problems(quote, recordings)
            if quote.name:
                quoted.add(quote.name)
    for name in sorted(set(recordings) - quoted):
        found.append(f"{RECORDINGS}/{name}.txt: recorded by the demo but quoted nowhere")
    return found


def write(repo: Path) -> None:
    """Replaces every quoted block's body with its recording, as it was recorded."""
    recordings = load_recordings(repo)
    for document in documents(repo):
        text = document.read_text()
        lines = text.splitlines()
        for quote in reversed(blocks(document, text)):
            if quote.name in recordings:
                body = expected_body(recordings[quote.name], quote.head)
                lines[quote.body_start:quote.body_end] = body
        document.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    if argv[1:] == ["--write"]:
        write(REPO)
        return 0
    found = check(REPO)
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
