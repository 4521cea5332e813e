"""A file's unit tests are its own `tests` module (CONTRIBUTING.md, "Architecture").

The rule: a file's unit tests are declared in that file under `#[cfg(test)]`, inline
(`mod tests { .. }`) while short, and when long in `<module>_tests.rs` beside it, attached with
`#[cfg(test)] #[path = "<module>_tests.rs"] mod tests;`. `<module>` is the file's stem, or for
a `mod.rs` its folder's name: `tar_gz.rs` has `tar_gz_tests.rs`, `bundle/mod.rs` has
`bundle/bundle_tests.rs`. This reads operator/src, cli/src and crd/src and reports, with
file:line:

1. a `*_tests.rs` that its subject file does not attach so (none does, another file does, or
   more than one declaration does);
2. a `mod <name>_tests;` without `#[path]` (a parent declaring tests of its children);
3. a `#[path = ".._tests.rs"]` declaration that is not `mod tests`, not under `#[cfg(test)]`,
   inside an inline module, or names a file in another folder.

A `#[path]` to any other file (the redaction corpus's format, a data include) is not a test
attachment and is left alone.

    python3 tests/lint/unit_test_files.py     prints what breaks the rule
"""

import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import layering as L  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CRATES = ("operator", "cli", "crd")
SUFFIX = "_tests.rs"

Decl = collections.namedtuple("Decl", "name line path cfg_test nested")


def subject_name(file: Path) -> str:
    """The module a file is: its stem, or for a mod.rs its folder's name."""
    return file.parent.name if file.name == "mod.rs" else file.stem


def tests_file_of(file: Path) -> str:
    return subject_name(file) + SUFFIX


def subjects_of(tests_file: Path) -> list[Path]:
    """The files whose tests `<module>_tests.rs` may be: `<module>.rs` beside it, or the
    folder's mod.rs when the folder is `<module>/`."""
    module = tests_file.name.removesuffix(SUFFIX)
    found = [tests_file.parent / f"{module}.rs"]
    if tests_file.parent.name == module:
        found.append(tests_file.parent / "mod.rs")
    return found


def declarations(src: str) -> list[Decl]:
    """Every `mod name;` of a file (not the inline ones), with its attributes read."""
    toks = L.lex(src)
    match = L.match_brackets(toks)
    depth, found = 0, []
    for i, t in enumerate(toks):
        if t.kind == "punct" and t.text == "{":
            depth += 1
        elif t.kind == "punct" and t.text == "}":
            depth -= 1
        elif (t.text == "mod" and t.kind == "id" and i + 2 < len(toks)
              and toks[i + 1].kind == "id" and toks[i + 2].text == ";"):
            path, cfg_test = None, False
            for content in attributes_before(toks, match, i):
                if [c.text for c in content[:2]] == ["path", "="] and len(content) > 2:
                    path = content[2].text.strip('"')
                cfg_test = cfg_test or L.is_test_attribute(content)
            found.append(Decl(toks[i + 1].text, t.line, path, cfg_test, depth > 0))
    return found


def attributes_before(toks, match, i):
    """The contents of the outer attributes of the item whose keyword is at i, past its
    visibility (`pub`, `pub(super)`)."""
    j = i - 1
    if j >= 0 and toks[j].text == ")" and match[j] is not None \
            and toks[match[j] - 1].text == "pub":
        j = match[j] - 2
    elif j >= 0 and toks[j].text == "pub":
        j -= 1
    while j >= 1 and toks[j].text == "]" and match[j] is not None and match[j] >= 1 \
            and toks[match[j] - 1].text == "#":
        yield toks[match[j] + 1:j]
        j = match[j] - 2


def rel(repo: Path, path: Path) -> str:
    return str(path.relative_to(repo))


def check(repo: Path) -> list[str]:
    found, attached = [], collections.defaultdict(list)
    files = sorted(f for crate in CRATES for f in (repo / crate / "src").rglob("*.rs"))
    for file in files:
        for d in declarations(file.read_text(encoding="utf-8")):
            where = f"{rel(repo, file)}:{d.line}"
            if d.path is None:
                if d.name.endswith("_tests"):
                    found.append(f"{where}: `mod {d.name};` declares tests outside the file they "
                                 "test: attach them from it, as #[cfg(test)] "
                                 "#[path = \"<module>_tests.rs\"] mod tests;")
                continue
            if not d.path.endswith(SUFFIX):
                continue  # a data include, not a test attachment
            wrong = []
            if d.name != "tests":
                wrong.append(f"as `mod {d.name}`, not `mod tests`")
            if not d.cfg_test:
                wrong.append("without #[cfg(test)]")
            if d.nested:
                wrong.append("inside an inline module")
            if "/" in d.path or "\\" in d.path:
                wrong.append("from another folder")
            elif d.path != tests_file_of(file):
                wrong.append(f"but {rel(repo, file)}'s tests file is {tests_file_of(file)}")
            if wrong:
                found.append(f"{where}: attaches {d.path} " + ", ".join(wrong))
            else:
                attached[file.parent / d.path].append(where)
    for file in files:
        if not file.name.endswith(SUFFIX):
            continue
        by = attached.get(file, [])
        subjects = " or ".join(rel(repo, s) for s in subjects_of(file))
        if file.name == "mod" + SUFFIX:
            found.append(f"{rel(repo, file)}: a mod.rs's tests file is named after its folder: "
                         f"{file.parent.name}{SUFFIX}")
        elif not by:
            folder = file.parent / file.name.removesuffix(SUFFIX)
            moved = (f"; its subject is a folder: move it to {rel(repo, folder / file.name)}"
                     if (folder / "mod.rs").is_file() else "")
            found.append(f"{rel(repo, file)}: attached by no `#[cfg(test)] #[path = "
                         f"\"{file.name}\"] mod tests;` in its subject file ({subjects}){moved}")
        elif len(by) > 1:
            found.append(f"{rel(repo, file)}: attached more than once: {', '.join(by)}")
    return found


if __name__ == "__main__":
    from report import exit_with

    exit_with(check(REPO))
