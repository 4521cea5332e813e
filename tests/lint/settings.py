"""One truth for the operator's settings: its flags, the chart and docs/configuration.md agree.

Read from the sources, so no build is needed:
- the flags: `struct Args` of operator/src/args.rs (clap: `#[arg(long.., env = "..")]`);
- the chart: the environment the Deployment gives the operator (`define "vdo.env"` in
  templates/_helpers.tpl) and the values each variable is made of (`.Values.a.b`, also through
  the `include`d definitions), which values.schema.json must declare;
- the docs: the table of docs/configuration.md whose header starts `| flag | environment |
  chart value |`, one row per variable.

The checks, each both ways:
- every flag has a docs row (same variable) and every flag row names a flag;
- every flag's variable is set by the chart, and everything the chart sets is a flag (or a
  variable the docs list without a flag, such as RUST_LOG);
- a row's chart value cell names exactly the values the chart makes its variable from (in
  backticks), or says `fixed` when the chart sets it without a value; every such value is in
  values.schema.json;
- a row's default is the flag's default in clap.

    python3 tests/lint/settings.py     prints what disagrees
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROCESS = Path("operator/src/args.rs")
HELPERS = Path("charts/velero-debug-operator/templates/_helpers.tpl")
SCHEMA = Path("charts/velero-debug-operator/values.schema.json")
CONFIGURATION = Path("docs/configuration.md")
TABLE_HEADER = re.compile(r"^\|\s*flag\s*\|\s*environment\s*\|\s*chart value\s*\|\s*default\s*\|")


@dataclass
class Flag:
    name: str  # --max-attempts
    env: str  # MAX_ATTEMPTS
    default: str | None  # as clap's attribute writes it, when it is a literal


@dataclass
class Row:
    line: int
    flag: str | None
    env: str
    values: set[str]
    fixed: bool
    default: str


@dataclass
class Chart:
    env_values: dict[str, set[str]] = field(default_factory=dict)  # variable -> values


def args_struct(source: str) -> str:
    start = source.index("pub struct Args {")
    depth, i = 0, source.index("{", start)
    for j in range(i, len(source)):
        depth += {"{": 1, "}": -1}.get(source[j], 0)
        if depth == 0:
            return source[i:j]
    raise ValueError("struct Args has no end")


def flags(source: str) -> list[Flag]:
    """The operator's flags, from the `#[arg(..)]` attributes of `struct Args`."""
    found = []
    body = args_struct(source)
    for attribute, name in re.findall(r"#\[arg\((.*?)\)\]\s*(?:pub(?:\([\w:]+\))?\s+)?(\w+):", body, re.S):
        long = re.search(r'\blong\s*=\s*"([^"]+)"', attribute)
        if not re.search(r"\blong\b", attribute):
            continue
        env = re.search(r'\benv\s*=\s*"([^"]+)"', attribute)
        if not env:
            raise ValueError(f"flag {name} has no environment variable")
        default = re.search(r'\bdefault_value\s*=\s*"([^"]*)"', attribute) or re.search(
            r"\bdefault_value_t\s*=\s*([0-9][0-9_ *]*|true|false)\s*(?:,|$)", attribute)
        value = default[1].strip() if default else None
        if value and re.fullmatch(r"[0-9][0-9_ *]*", value):
            value = str(eval(value.replace("_", "")))  # noqa: S307 (digits and * only)
        found.append(Flag(
            name="--" + (long[1] if long else name.replace("_", "-")),
            env=env[1],
            default=value,
        ))
    return found


def chart(helpers: str) -> Chart:
    """The variables `vdo.env` sets and the values each is made of."""
    defines = dict(re.findall(r'\{\{-? define "([^"]+)" -?\}\}(.*?)\{\{-? end -?\}\}(?=\s*(?:\{\{/\*|\{\{-? define|\Z))',
                              helpers, re.S))

    def values_of(text: str, seen: frozenset = frozenset()) -> set[str]:
        found = set(re.findall(r"\.Values((?:\.\w+)+)", text))
        found = {v[1:] for v in found}
        for name in re.findall(r'include "([^"]+)"', text):
            if name in defines and name not in seen:
                found |= values_of(defines[name], seen | {name})
        return found

    result = Chart()
    env = defines["vdo.env"]
    entries = re.split(r"^- name: ", env, flags=re.M)[1:]
    for entry in entries:
        name, _, rest = entry.partition("\n")
        # The entry ends where the template's own lines (`{{- with`, a comment) begin.
        own = re.split(r"^(?:\{\{-|#)", rest, maxsplit=1, flags=re.M)[0]
        result.env_values[name.strip()] = values_of(own)
    # A variable set only under a `with .Values.x` (REDACTION_PATTERNS) is made of x.
    for condition, block in re.findall(r"\{\{- with \.Values((?:\.\w+)+) \}\}(.*?)\{\{- end \}\}", env, re.S):
        for name in re.findall(r"^- name: (\w+)", block, re.M):
            result.env_values[name].add(condition[1:])
    return result


def schema_paths(schema: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key, node in schema.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        paths.add(path)
        paths |= schema_paths(node, path)
    return paths


def rows(markdown: str) -> list[Row]:
    """The rows of the settings table of docs/configuration.md."""
    found, in_table = [], False
    for n, line in enumerate(markdown.splitlines(), start=1):
        if TABLE_HEADER.match(line):
            in_table = True
            continue
        if not in_table:
            continue
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if set(cells[0]) <= {"-", " "}:
            continue
        flag = re.fullmatch(r"`(--[a-z0-9-]+)`", cells[0])
        env = re.fullmatch(r"`([A-Z0-9_]+)`", cells[1])
        if not env:
            raise ValueError(f"{CONFIGURATION}:{n}: the environment cell is not one `NAME`")
        found.append(Row(
            line=n,
            flag=flag[1] if flag else None,
            env=env[1],
            values=set(re.findall(r"`([a-zA-Z][\w.]*)`", cells[2])),
            fixed=cells[2].startswith("fixed"),
            default=cells[3],
        ))
    return found


def shown(default: str) -> str:
    """A default as the table writes it."""
    return f"`{default}`" if default else "(empty)"


def check(repo: Path) -> list[str]:
    found = []
    operator_flags = flags((repo / PROCESS).read_text())
    by_env = {f.env: f for f in operator_flags}
    the_chart = chart((repo / HELPERS).read_text())
    declared = schema_paths(json.loads((repo / SCHEMA).read_text()))
    table = rows((repo / CONFIGURATION).read_text())
    documented = {r.env: r for r in table}
    where = str(CONFIGURATION)

    if not table:
        return [f"{where}: no table with the header `| flag | environment | chart value | default |`"]
    for flag in operator_flags:
        row = documented.get(flag.env)
        if row is None:
            found.append(f"{where}: no row for flag {flag.name} ({flag.env})")
        elif row.flag != flag.name:
            found.append(f"{where}:{row.line}: {flag.env} is flag {flag.name}, the row says {row.flag}")
        elif flag.default is not None and shown(flag.default) not in row.default:
            found.append(f"{where}:{row.line}: {flag.name}'s default is {shown(flag.default)}, "
                         f"the row says {row.default}")
        if flag.env not in the_chart.env_values:
            found.append(f"{HELPERS}: the chart does not set {flag.env} (flag {flag.name}); "
                         "add a value and set it in vdo.env")
    for row in table:
        if row.flag and row.env not in by_env:
            found.append(f"{where}:{row.line}: {row.flag} ({row.env}) is no flag of the operator")
        if row.env not in the_chart.env_values:
            if row.values or row.fixed:
                found.append(f"{where}:{row.line}: the chart does not set {row.env}")
            continue
        made_of = the_chart.env_values[row.env]
        if made_of and row.values != made_of:
            found.append(f"{where}:{row.line}: {row.env} is made of chart values "
                         f"{sorted(made_of)}, the row names {sorted(row.values)}")
        if not made_of and not row.fixed:
            found.append(f"{where}:{row.line}: the chart sets {row.env} without a value; "
                         "its chart value cell should say `fixed`")
        for value in sorted(made_of - declared):
            found.append(f"{SCHEMA}: {row.env} is made of `{value}`, which the schema lacks")
    for env in sorted(set(the_chart.env_values) - set(by_env) - set(documented)):
        found.append(f"{HELPERS}: the chart sets {env}, which is no flag and has no row in {where}")
    return found


if __name__ == "__main__":
    from report import exit_with

    exit_with(check(REPO))
