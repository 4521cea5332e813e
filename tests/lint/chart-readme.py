#!/usr/bin/env python3
"""Writes charts/velero-debug-operator/README.md from the chart's values.yaml, helm-docs style.

Each value's description is the comment right above its key (no blank line between);
comment lines indented further than the text (`#   - name: X`) are an example and are shown
as code. A map gets a row of its own only when it has a comment; every other key (a scalar, a
list, an empty map) gets a row with its type and default, and needs a comment of its own or
one on a map it is in. The values.yaml of this chart is
plain block YAML: maps, lists of scalars or of flat maps, and flow values on one line; anything
else stops the script, rather than a wrong table.

    python3 tests/lint/chart-readme.py           rewrite the README
    python3 tests/lint/chart-readme.py --check   exit 1 when the committed README differs
                                                (`make lint` checks it through
                                                tests/lint/test_chart_readme.py)
"""

import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHART = Path("charts/velero-debug-operator")
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?: (?P<value>.*))?$")
ITEM = re.compile(r"^(?P<indent> *)- (?P<value>.*)$")


@dataclass
class Value:
    path: str
    kind: str  # string, int, bool, list, object
    default: str  # as YAML flow text
    description: str


def comment_text(lines: list[str]) -> str:
    """A comment block as Markdown: prose joined, indented example lines as code."""
    parts, code = [], []
    for line in lines:
        text = line.strip()[1:]
        if text.startswith("   ") and text.strip():
            code.append(text.strip())
            continue
        if code:
            parts.append("`" + "`, `".join(code) + "`")
            code = []
        parts.append(text.strip())
    if code:
        parts.append("`" + "`, `".join(code) + "`")
    return " ".join(p for p in parts if p).replace("|", "\\|")


def kind_of(value: str) -> str:
    if value.startswith("["):
        return "list"
    if value.startswith("{"):
        return "object"
    if value in ("true", "false"):
        return "bool"
    if re.fullmatch(r"-?\d+", value):
        return "int"
    return "string"


def flow(lines: list[str]) -> str:
    """A block list (of scalars, or of flat maps) as one line of YAML flow text."""
    items: list[list[str]] = []
    for line in lines:
        item = ITEM.match(line)
        if item:
            items.append([item["value"]])
        elif items and KEY.match(line.strip()):
            items[-1].append(line.strip())
        else:
            raise ValueError(f"not a list of scalars or flat maps: {line!r}")
    rendered = []
    for item in items:
        if len(item) == 1 and not KEY.match(item[0]):
            rendered.append(item[0])
        else:
            rendered.append("{" + ", ".join(item) + "}")
    return "[" + ", ".join(rendered) + "]"


def values(text: str) -> list[Value]:
    """Every documented value of a values.yaml, in file order."""
    lines = text.splitlines()
    found: list[Value] = []
    stack: list[tuple[int, str]] = []  # (indent, key) of the maps we are in
    comment: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            comment = []
            i += 1
            continue
        if line.lstrip().startswith("#"):
            comment.append(line)
            i += 1
            continue
        key = KEY.match(line)
        if not key:
            raise ValueError(f"values.yaml:{i + 1}: not a key: {line!r}")
        indent = len(key["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [key["key"]])
        description = comment_text(comment)
        comment = []
        value = (key["value"] or "").split(" #")[0].strip()
        # What follows, indented deeper: the map's keys or the list's items.
        j = i + 1
        block = []
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
                                  or (lines[j].lstrip().startswith("- ") and not value
                                      and len(lines[j]) - len(lines[j].lstrip()) == indent)):
            block.append(lines[j])
            j += 1
        while block and not block[-1].strip():
            block.pop()
        if value:
            found.append(Value(path, kind_of(value), value, description))
            i += 1
        elif block and ITEM.match(block[0]):
            found.append(Value(path, "list", flow(block), description))
            i += 1 + len(block)
        else:
            if description:
                found.append(Value(path, "object", "", description))
            stack.append((indent, key["key"]))
            i += 1
    return found


def undocumented(rows: list[Value]) -> list[str]:
    """Values without a description of their own nor one of a map they are in."""
    described = {v.path for v in rows if v.description}
    missing = []
    for v in rows:
        parts = v.path.split(".")
        ancestors = {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
        if not ancestors & described:
            missing.append(v.path)
    return missing


def chart_field(chart_yaml: str, name: str) -> str:
    match = re.search(rf"^{name}: *(.*)$", chart_yaml, re.M)
    return match[1].strip().strip('"') if match else ""


def render(repo: Path) -> str:
    chart_yaml = (repo / CHART / "Chart.yaml").read_text()
    rows = values((repo / CHART / "values.yaml").read_text())
    missing = undocumented(rows)
    if missing:
        raise ValueError("values without a comment in values.yaml: " + ", ".join(missing))
    out = [
        "# velero-debug-operator chart",
        "",
        "<!-- Generated by tests/lint/chart-readme.py from values.yaml; edit the comments there, "
        "then run it. -->",
        "",
        f"{chart_field(chart_yaml, 'description')}.",
        "",
        f"Chart version {chart_field(chart_yaml, 'version')}, operator (appVersion) "
        f"{chart_field(chart_yaml, 'appVersion')}, Kubernetes {chart_field(chart_yaml, 'kubeVersion')}.",
        "",
        "```sh",
        "helm install velero-debug-operator charts/velero-debug-operator --namespace velero",
        "```",
        "",
        "Every operator setting is a value below; docs/configuration.md maps each to the "
        "operator's flag and says what it does.",
        "",
        "## Values",
        "",
        "| Key | Type | Default | Description |",
        "| --- | --- | --- | --- |",
    ]
    for v in rows:
        default = ("`" + v.default + "`").replace("|", "\\|") if v.default else ""
        out.append(f"| `{v.path}` | {v.kind} | {default} | {v.description} |")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    readme = REPO / CHART / "README.md"
    generated = render(REPO)
    if argv[1:] == ["--check"]:
        if not readme.is_file() or readme.read_text() != generated:
            print(f"{readme.relative_to(REPO)} is not what values.yaml makes; run "
                  "`python3 tests/lint/chart-readme.py`", file=sys.stderr)
            return 1
        return 0
    readme.write_text(generated)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
