"""CONTRIBUTING.md's architecture diagram agrees with the layer table of layering.py.

The first fenced block under "## Architecture" draws the operator's layers, highest first. A
layer starts on a line with its label at the left margin (`entry`, `controllers`, `steps`,
`I/O adapters`, `pure cores`: the label's last word is the layer's name in `LAYERS`), and
holds the modules of operator/src written after the label and on the indented lines below it
up to the next label: `name.rs` for a file, `name/` for a folder. What is in parentheses
describes a module and is not read. Reports, naming the module:

1. a module of `LAYERS`, or one the crate roots (lib.rs, main.rs) declare outside test code,
   that the diagram does not show, or shows twice;
2. a module the diagram shows that `LAYERS` does not have;
3. a module in another layer than `LAYERS` puts it, and layers out of `LAYERS`' order;
4. `name.rs` where operator/src has a folder `name/`, `name/` where it has a file `name.rs`,
   or a module that is neither.

    python3 tests/lint/architecture_diagram.py     prints the disagreements
"""

import collections
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import layering  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DOCUMENT = Path("CONTRIBUTING.md")
SRC = Path("operator/src")
SECTION = "## Architecture"
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# A label at the left margin (at most one space before it), ended by two spaces or the line.
LABEL = re.compile(r"^ ?(\S+(?: \S+)*)(?: {2,}|$)")
MODULE = re.compile(r"(?<![\w./-])([a-z_][a-z0-9_]*)(\.rs|/)(?![\w/.-])")

Room = collections.namedtuple("Room", "name form layer line")  # form: ".rs" or "/"


def diagram(text: str) -> tuple[int, list[str]] | None:
    """(line number of its first line, its lines) of the section's first fenced block."""
    lines = text.splitlines()
    start = next((n for n, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None:
        return None
    opened = None
    for n in range(start + 1, len(lines)):
        if lines[n].startswith("## "):
            return None
        fence = FENCE.match(lines[n])
        if fence and opened is None:
            opened = (n, fence[1])
        elif fence and lines[n].strip().startswith(opened[1]):
            return opened[0] + 2, lines[opened[0] + 1:n]
    return None


def rooms(first: int, lines: list[str]) -> tuple[list[Room], list[tuple[str, int]]]:
    """The modules the diagram shows, and its labels ((label, line)) in order."""
    found, labels, layer, depth = [], [], None, 0
    for n, line in enumerate(lines, start=first):
        label = LABEL.match(line) if depth == 0 else None
        if label:
            labels.append((label[1], n))
            layer, line = label[1].split()[-1], line[label.end():]
        outside = []
        for c in line:
            depth += (c == "(") - (c == ")" and depth > 0)
            outside.append(c if depth == 0 and c != ")" else " ")
        for m in MODULE.finditer("".join(outside)):
            found.append(Room(m[1], m[2], layer, n))
    return found, labels


def root_modules(src: Path) -> set[str]:
    """lib, main and the modules they declare outside test code."""
    found = set()
    for root in ("lib.rs", "main.rs"):
        if (src / root).is_file():
            found.add(root.removesuffix(".rs"))
            scan = layering.scan_source((src / root).read_text(encoding="utf-8"))
            found |= {d.name for d in scan.mods if not d.scope}
    return found


def check(repo: Path, layers: dict[str, list[str]] | None = None) -> list[str]:
    layers = layering.LAYERS if layers is None else layers
    layer_of = {m: layer for layer, modules in layers.items() for m in modules}
    text = (repo / DOCUMENT).read_text(encoding="utf-8") if (repo / DOCUMENT).is_file() else ""
    found_diagram = diagram(text)
    if found_diagram is None:
        return [f"{DOCUMENT}: no fenced diagram under {SECTION!r}"]
    drawn, labels = rooms(*found_diagram)
    out = [f"{DOCUMENT}:{n}: label `{label}` names no layer of LAYERS ({', '.join(layers)})"
           for label, n in labels if label.split()[-1] not in layers]
    order = [label.split()[-1] for label, _ in labels]
    if [x for x in order if x in layers] != [x for x in layers if x in order]:
        out.append(f"{DOCUMENT}:{found_diagram[0]}: the diagram's layers run "
                   f"{', '.join(order)}; LAYERS' run {', '.join(layers)}")
    src, seen = repo / SRC, collections.Counter(room.name for room in drawn)
    for room in drawn:
        where, written = f"{DOCUMENT}:{room.line}", room.name + room.form
        if room.layer is None:
            out.append(f"{where}: `{written}` is drawn before any layer's label")
        elif room.name not in layer_of:
            out.append(f"{where}: `{written}` is in the diagram ({room.layer}), "
                       f"but LAYERS (tests/lint/layering.py) has no module `{room.name}`")
        elif room.layer in layers and layer_of[room.name] != room.layer:
            out.append(f"{where}: `{written}` is drawn in {room.layer}; "
                       f"LAYERS puts `{room.name}` in {layer_of[room.name]}")
        out += form_problems(where, room, src)
    for name in sorted(n for n, count in seen.items() if count > 1):
        out.append(f"{DOCUMENT}: `{name}` is drawn {seen[name]} times")
    missing = (set(layer_of) | root_modules(src)) - set(seen)
    for name in sorted(missing):
        where = (f"LAYERS puts it in {layer_of[name]}" if name in layer_of
                 else f"{SRC}'s crate roots declare it; LAYERS has no layer for it")
        out.append(f"{DOCUMENT}: module `{name}` is missing from the Architecture diagram "
                   f"({where})")
    return out


def form_problems(where: str, room: Room, src: Path) -> list[str]:
    file, folder = src / f"{room.name}.rs", src / room.name
    if room.form == ".rs" and not file.is_file() and folder.is_dir():
        return [f"{where}: `{room.name}.rs` is a folder: write `{room.name}/`"]
    if room.form == "/" and not folder.is_dir() and file.is_file():
        return [f"{where}: `{room.name}/` is a file: write `{room.name}.rs`"]
    if not file.is_file() and not folder.is_dir():
        return [f"{where}: `{room.name}{room.form}`: {SRC} has no {room.name}.rs or "
                f"{room.name}/"]
    return []


if __name__ == "__main__":
    from report import exit_with

    exit_with(check(REPO))
