"""docs/compatibility.md's version table is made from the version passes' results.

Each run of the version pass (`tests/env/run/version-pass.sh`, `make e2e-velero-X`; `make test`
runs it on the oldest version, and an unfiltered `make e2e` records the default version) writes
`docs/compatibility/<version>.json`: the commit, the date, and each scenario of
`tests/env/run/version-pass.tsv` with its test's result. The table between the markers of
docs/compatibility.md is rendered from those files alone, so a claim cannot outlive its run:
`make lint` fails when the doc and the results disagree.

    compatibility.py record VERSION LOG COMMIT   results of a run from its test output, and the table
    compatibility.py render                      writes the table from the results files
    compatibility.py                             checks the table (make lint)
"""

import datetime
import json
import re
import sys
from pathlib import Path

from report import exit_with

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = Path("tests/env/run/version-pass.tsv")
RESULTS = Path("docs/compatibility")
DOC = Path("docs/compatibility.md")
BEGIN = "<!-- version-pass:begin (tests/lint/compatibility.py render) -->"
END = "<!-- version-pass:end -->"
# libtest's line for one test's result.
RESULT_LINE = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)\b", re.M)


def scenarios(root: Path) -> list[tuple[str, str]]:
    """(scenario, test) in the pass's order."""
    rows = []
    for line in (root / SCENARIOS).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            scenario, test = line.split("\t")
            rows.append((scenario, test))
    return rows


def record(root: Path, version: str, log: str, commit: str, today: str) -> dict:
    """The results of a run whose libtest output is `log`."""
    seen = {name: r for name, r in RESULT_LINE.findall(log)}
    words = {"ok": "passed", "FAILED": "failed", "ignored": "not run"}
    return {
        "velero": version,
        "commit": commit,
        "date": today,
        "scenarios": {test: words.get(seen.get(test, ""), "not run") for _, test in scenarios(root)},
    }


def version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in version.lstrip("v").split("."))


def render(root: Path) -> str:
    """The table: a row per scenario, a column per version with results."""
    runs = [json.loads(p.read_text()) for p in sorted((root / RESULTS).glob("*.json"))]
    runs.sort(key=lambda r: version_key(r["velero"]))
    head = "| scenario | " + " | ".join(
        f"{r['velero']} ({r['date']}, {r['commit']})" for r in runs) + " |"
    rule = "| --- |" + " --- |" * len(runs)
    rows = [
        f"| {scenario} | " + " | ".join(r["scenarios"].get(test, "not run") for r in runs) + " |"
        for scenario, test in scenarios(root)
    ]
    return "\n".join([BEGIN, head, rule, *rows, END])


def replaced(doc: str, table: str) -> str:
    start, end = doc.index(BEGIN), doc.index(END) + len(END)
    return doc[:start] + table + doc[end:]


def problems(root: Path) -> list[str]:
    doc = (root / DOC).read_text()
    if BEGIN not in doc or END not in doc:
        return [f"{DOC}: no version table between {BEGIN} and {END}"]
    if replaced(doc, render(root)) != doc:
        return [f"{DOC}: the version table differs from the results in {RESULTS}/: "
                "run `python3 tests/lint/compatibility.py render`"]
    return []


def main(args: list[str]) -> None:
    if args[:1] == ["record"] and len(args) == 4:
        version, log, commit = args[1:]
        today = datetime.date.today().isoformat()
        results = record(REPO, version, Path(log).read_text(errors="replace"), commit, today)
        (REPO / RESULTS).mkdir(exist_ok=True)
        (REPO / RESULTS / f"{version}.json").write_text(json.dumps(results, indent=2) + "\n")
        args = ["render"]
    if args == ["render"]:
        doc = (REPO / DOC).read_text()
        (REPO / DOC).write_text(replaced(doc, render(REPO)))
        return
    exit_with(problems(REPO))


if __name__ == "__main__":
    main(sys.argv[1:])
