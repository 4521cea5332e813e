"""docs/diagnosis.md's catalogue against the finding rules of operator/src/findings/rules/.

Every rule id the code can put in a finding must have a row in the catalogue (a table row whose
first cell is the id in backticks), and every row must name a rule id the code has. The ids are
the kebab-case string literals of the non-test code under rules/: that folder holds only the
rules, and a rule names its id as such a literal (`Finding::new(.., "quota-exceeded", ..)`,
`rule: "pvc-pending"`, `from_event("volume-attach-failed", ..)`).

    python3 tests/lint/rule_catalogue.py     prints the ids without a row, and rows without a rule
"""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RULES = Path("operator/src/findings/rules")
CATALOGUE = Path("docs/diagnosis.md")

RULE_ID = re.compile(r'"([a-z][a-z0-9]*(?:-[a-z0-9]+)+)"')
ROW = re.compile(r"^\|\s*`([a-z][a-z0-9-]*)`\s*\|")


def without_comments_and_tests(source: str) -> str:
    """The code of a Rust file before its `#[cfg(test)]` module, without `//` comments."""
    source = source.split("#[cfg(test)]", 1)[0]
    return re.sub(r"//[^\n]*", "", source)


def rule_ids_in_code(repo: Path) -> set[str]:
    ids = set()
    for path in sorted((repo / RULES).glob("*.rs")):
        if path.name.endswith("_tests.rs"):
            continue
        ids |= set(RULE_ID.findall(without_comments_and_tests(path.read_text())))
    return ids


def rule_ids_in_catalogue(text: str) -> list[str]:
    return [m[1] for m in map(ROW.match, text.splitlines()) if m]


def check(repo: Path) -> list[str]:
    in_code = rule_ids_in_code(repo)
    catalogue = repo / CATALOGUE
    rows = rule_ids_in_catalogue(catalogue.read_text()) if catalogue.is_file() else []
    found = [f"{CATALOGUE}: no row for rule `{rule}` ({RULES}/)"
             for rule in sorted(in_code - set(rows))]
    found += [f"{CATALOGUE}: row `{rule}` names no rule of {RULES}/"
              for rule in sorted(set(rows) - in_code)]
    found += [f"{CATALOGUE}: rule `{rule}` has more than one row"
              for rule in sorted({r for r in rows if rows.count(r) > 1})]
    if not in_code:
        found.append(f"{RULES}/: no rule id found; has the code moved?")
    return found


if __name__ == "__main__":
    from report import exit_with

    exit_with(check(REPO))
