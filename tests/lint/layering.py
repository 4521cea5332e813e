#!/usr/bin/env python3
"""Structure check of the Rust sources: import circles, layers and function length.

rustc and clippy accept modules that import each other in a circle, a pure module that
reaches for I/O, and a 300-line function. This script reads operator/src, cli/src and
crd/src (each crate on its own; test code left out) and reports, with file:line:

1. circles between files (a parent module using its own children does not count) and
   between the entries of each folder;
2. imports against the layer table below (operator crate only);
3. functions longer than --max-fn-lines (operator and cli).

It exits 1 when it reports anything. Standard library only; run by `make lint`.
"""

import argparse
import collections
import os
import re
import sys
from pathlib import Path

# --------------------------------------------------------------------------- configuration

REPO = Path(__file__).resolve().parents[2]
CRATES = ("operator", "cli", "crd")  # each <crate>/src is a graph of its own
FN_LENGTH_CRATES = ("operator", "cli")
LAYERED_CRATE = "operator"

# Top-level modules of operator/src (a file's stem or a folder's name), highest layer first.
# `lib` and `main` are the crate roots. A module missing here is reported.
LAYERS = {
    "entry": ["lib", "main", "args", "process", "http", "leader", "probe"],
    "controllers": ["bundle", "auto_bundles", "orphans", "uninstall", "own_crd"],
    # The work a controller hands off: evidence and files out, no status in.
    "steps": ["collect"],
    "adapters": [
        "storage", "kubernetes", "log_client", "spool", "api_timeout", "request_tally", "tar_gz",
        "gzip_members", "metrics", "health", "context", "config", "allocator", "event_publisher",
        "install_record", "recorder",
    ],
    "cores": ["findings", "summary", "report", "redact", "velero", "proxy"],
}
# The layers each layer may import, its own included; cores import only cores.
MAY_IMPORT = {
    "entry": {"entry", "controllers", "steps", "adapters", "cores"},
    "controllers": {"controllers", "steps", "adapters", "cores"},
    "steps": {"steps", "adapters", "cores"},
    "adapters": {"adapters", "cores"},
    "cores": {"cores"},
}
# Modules a layer never imports, whichever layer they sit in after a reorganisation. A step
# is handed what it uses: the whole Context (status, events, every client) is the controller's.
NEVER_IMPORT = {"cores": {"tar_gz", "bundle"}, "steps": {"context", "bundle"}}

# --------------------------------------------------------------------------- lexer

Token = collections.namedtuple("Token", "kind text line")  # kind: id, life, lit, punct

_SPACE = re.compile(r"\s+")
_RAW_STR = re.compile(r'[bc]?r(#*)"')
_STR = re.compile(r'[bc]?"(?:[^"\\]|\\.)*"', re.S)
_CHAR = re.compile(r"b?'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F_]*\}|.)|[^\\\n'])'")
_LIFETIME = re.compile(r"'[^\W\d]\w*")
_IDENT = re.compile(r"(?:r#)?[^\W\d]\w*")
_NUMBER = re.compile(r"\d\w*(?:\.\d\w*)?")


def lex(src):
    """Splits Rust source into tokens, dropping whitespace and (nested) comments."""
    toks, i, line = [], 0, 1
    while i < len(src):
        end, kind = _lex_one(src, i)
        if kind:
            toks.append(Token(kind, src[i:end], line))
        line += src.count("\n", i, end)
        i = end
    return toks


def _lex_one(src, i):
    """Returns (end, kind) of what starts at i; kind is None for whitespace and comments."""
    m = _SPACE.match(src, i)
    if m:
        return m.end(), None
    if src.startswith("//", i):
        end = src.find("\n", i)
        return (len(src) if end < 0 else end), None
    if src.startswith("/*", i):
        return _block_comment_end(src, i), None
    m = _RAW_STR.match(src, i)
    if m:
        end = src.find('"' + m.group(1), m.end())
        return (len(src) if end < 0 else end + 1 + len(m.group(1))), "lit"
    for pattern, kind in ((_STR, "lit"), (_CHAR, "lit"), (_LIFETIME, "life"), (_IDENT, "id")):
        m = pattern.match(src, i)
        if m:
            return m.end(), kind
    m = _NUMBER.match(src, i)
    if m:
        return m.end(), "lit"
    return (i + 2 if src.startswith("::", i) else i + 1), "punct"


def _block_comment_end(src, i):
    depth = 0
    while i < len(src):
        if src.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif src.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(src)


def match_brackets(toks):
    """For each bracket token, the index of its partner (None elsewhere)."""
    match, stack = [None] * len(toks), []
    for i, t in enumerate(toks):
        if t.kind == "punct" and t.text in ("(", "[", "{"):
            stack.append(i)
        elif t.kind == "punct" and t.text in (")", "]", "}") and stack:
            j = stack.pop()
            match[i], match[j] = j, i
    return match


# --------------------------------------------------------------------------- attributes and items

def attribute_at(toks, match, i):
    """(end, inner, content tokens) if an attribute `#[..]` / `#![..]` starts at i, else None."""
    if toks[i].text != "#":
        return None
    j = i + 1 + (i + 1 < len(toks) and toks[i + 1].text == "!")
    if j < len(toks) and toks[j].text == "[" and match[j] is not None:
        return match[j], j == i + 2, toks[j + 1:match[j]]
    return None


def is_test_attribute(content):
    """`#[test]`, `#[tokio::test(..)]`, `#[cfg(test)]`, `#[cfg(all(test, ..))]`."""
    path, i = [], 0
    while i < len(content) and content[i].kind == "id":
        path.append(content[i].text)
        i += 1
        if i < len(content) and content[i].text == "::":
            i += 1
        else:
            break
    rest = content[i:]
    if path and path[-1] == "test" and (not rest or rest[0].text == "("):
        return True
    if path == ["cfg"] and rest and rest[0].text == "(":
        try:
            return _cfg_implies_test(rest, 1)[0]
        except IndexError:
            return False
    return False


def _cfg_implies_test(toks, i):
    """Whether the cfg predicate at toks[i] can only hold in a test build; (bool, next index)."""
    name, i = toks[i].text, i + 1
    if toks[i].text == "(":
        args, i = [], i + 1
        while toks[i].text != ")":
            value, i = _cfg_implies_test(toks, i)
            args.append(value)
            i += toks[i].text == ","
        if name == "all":
            return any(args), i + 1
        return (name == "any" and bool(args) and all(args)), i + 1  # not(..): False
    if toks[i].text == "=":
        i += 2
    return name == "test", i


_ITEM_KEYWORDS = {"fn", "mod", "impl", "struct", "enum", "trait", "union", "type", "const",
                  "static", "use", "extern", "macro_rules", "let"}
_SEMICOLON_ITEMS = {"const", "static", "use", "type", "let"}


def item_keyword(toks, match, i):
    """The keyword of the item at i, past visibility and qualifiers (`pub(crate) async fn`)."""
    while i < len(toks):
        t, nxt = toks[i].text, toks[i + 1].text if i + 1 < len(toks) else ""
        if t == "pub" and nxt == "(":
            i = match[i + 1] + 1
        elif t in ("pub", "async", "unsafe", "default") or (
                t == "const" and nxt in ("fn", "unsafe", "async", "extern")):
            i += 1
        elif t == "extern" and toks[i + 1].kind == "lit":
            i += 2
        else:
            return t
    return ""


def item_end(toks, match, i):
    """Index of the last token of the item, statement, field or arm starting at i."""
    kw = item_keyword(toks, match, i)
    while i < len(toks):
        t = toks[i]
        if t.kind == "punct" and t.text in ("(", "[", "{") and match[i] is not None:
            if t.text == "{" and kw not in _SEMICOLON_ITEMS:
                return match[i]
            i = match[i] + 1
            continue
        if t.kind == "punct" and (t.text in (")", "]", "}")):
            return i - 1
        if t.text == ";" or (t.text == "," and kw not in _ITEM_KEYWORDS):
            return i
        i += 1
    return len(toks) - 1


def test_spans(toks, match):
    """{first index: last index} of every item marked as test code (skipped entirely), and
    whether the whole file is (`#![cfg(test)]` at its top)."""
    spans, i, whole_file = {}, 0, False
    while i < len(toks):
        attr = attribute_at(toks, match, i)
        if not attr:
            i += 1
            continue
        end, inner, content = attr
        if not is_test_attribute(content):
            i = end + 1
        elif inner:
            opener = next((j for j in range(i - 1, -1, -1)
                           if toks[j].text == "{" and (match[j] or 0) > i), None)
            whole_file = whole_file or opener is None
            spans[i] = len(toks) - 1 if opener is None else match[opener] - 1
            i = spans[i] + 1
        else:
            start = end + 1
            while start < len(toks) and attribute_at(toks, match, start):
                start = attribute_at(toks, match, start)[0] + 1
            spans[i] = item_end(toks, match, start)
            i = spans[i] + 1
    return spans, whole_file


# --------------------------------------------------------------------------- use trees

UseLeaf = collections.namedtuple("UseLeaf", "segs alias glob line")


def parse_use_tree(toks, i, prefix=()):
    """Parses the use tree at toks[i]; returns (leaves, index after it).

    `use a::{self, b::{c as d, *}}` gives leaves (a), (a, b, c) as d, (a, b) glob. A leading
    `::` is kept as an empty first segment (an external crate).
    """
    segs, leaves = list(prefix), []
    if toks[i].text == "::":
        segs, i = segs + ([""] if not segs else []), i + 1
    while i < len(toks):
        t = toks[i]
        if t.text == "*":
            return [UseLeaf(tuple(segs), None, True, t.line)], i + 1
        if t.text == "{":
            i += 1
            while i < len(toks) and toks[i].text != "}":
                more, after = parse_use_tree(toks, i, segs)
                leaves += more
                i = max(after, i + 1)
                i += i < len(toks) and toks[i].text == ","
            return leaves, i + 1
        if t.kind != "id":
            return leaves, i
        segs.append(t.text)
        i += 1
        if i < len(toks) and toks[i].text == "::":
            i += 1
            continue
        alias = None
        if i + 1 < len(toks) and toks[i].text == "as":
            alias, i = toks[i + 1].text, i + 2
        if segs[-1] == "self":
            segs.pop()
        return [UseLeaf(tuple(segs), alias, False, t.line)], i
    return leaves, i


# --------------------------------------------------------------------------- scanning one file

ModDecl = collections.namedtuple("ModDecl", "scope name line path_attr inline")
UseDecl = collections.namedtuple("UseDecl", "scope item_level leaves")
PathRef = collections.namedtuple("PathRef", "scope segs line")
FnDef = collections.namedtuple("FnDef", "scope owner name start end")
Frame = collections.namedtuple("Frame", "close kind scope owner")  # kind: mod impl fn block
_DEFINITIONS = {"fn", "struct", "enum", "trait", "type", "const", "static", "union"}


class FileScan:
    """What one file declares and references; `scope` is the inline-module path within it."""

    def __init__(self):
        self.mods, self.uses, self.paths, self.fns, self.items = [], [], [], [], set()
        self.test_only = False


class Scanner:
    """Walks a file's tokens once, skipping test items, tracking inline modules and impls."""

    def __init__(self, toks):
        self.toks, self.match, self.out = toks, match_brackets(toks), FileScan()
        self.frames = [Frame(len(toks), "mod", (), ())]
        self.opens = {}  # index of a `{` -> the Frame it opens

    def run(self):
        skip, self.out.test_only = test_spans(self.toks, self.match)
        i = 0
        while i < len(self.toks):
            if i in skip:
                i = skip[i] + 1
                continue
            while self.frames[-1].close < i:
                self.frames.pop()
            if self.toks[i].text == "{" and self.toks[i].kind == "punct":
                top = self.frames[-1]
                close = self.match[i] if self.match[i] is not None else len(self.toks)
                self.frames.append(self.opens.get(i) or top._replace(close=close, kind="block"))
            i = self.step(i)
        return self.out

    def tok(self, i):
        return self.toks[i] if 0 <= i < len(self.toks) else Token("", "", 0)

    def step(self, i):
        t, nxt, prev = self.tok(i), self.tok(i + 1), self.tok(i - 1)
        frame = self.frames[-1]
        if t.kind != "id":
            return i + 1
        if t.text == "mod" and nxt.kind == "id" and self.tok(i + 2).text in (";", "{"):
            return self.on_mod(i)
        if t.text == "use" and nxt.text != "<":
            return self.on_use(i)
        if t.text == "fn" and nxt.kind == "id":
            return self.on_fn(i)
        if t.text in ("impl", "trait") and prev.text in ("", "{", "}", ";", "]", ")", "pub",
                                                          "unsafe", "default", "auto"):
            self.on_impl(i)
        if frame.kind == "mod" and t.text in _DEFINITIONS and nxt.kind == "id":
            self.out.items.add((frame.scope, nxt.text))
        if nxt.text == "::" and prev.text not in ("::", ".") and not self.in_visibility(i):
            return self.on_path(i)
        return i + 1

    def in_visibility(self, i):
        return self.tok(i - 1).text == "in" and self.tok(i - 3).text == "pub"

    def on_mod(self, i):
        scope, name = self.frames[-1].scope, self.toks[i + 1].text
        inline = self.toks[i + 2].text == "{"
        self.out.mods.append(ModDecl(scope, name, self.toks[i].line, self.path_attr(i), inline))
        if inline:
            self.opens[i + 2] = Frame(self.match[i + 2], "mod", scope + (name,), ())
        return i + 2

    def path_attr(self, i):
        """The value of a `#[path = ".."]` among the attributes before the item at i."""
        j = i - 1
        if self.tok(j).text == ")" and self.tok(self.match[j] - 1).text == "pub":
            j = self.match[j] - 2
        elif self.tok(j).text == "pub":
            j -= 1
        while self.tok(j).text == "]" and self.match[j] is not None:
            content = self.toks[self.match[j] + 1:j]
            if [t.text for t in content[:2]] == ["path", "="]:
                return content[2].text.strip('"')
            j = self.match[j] - 2
        return None

    def on_use(self, i):
        leaves, end = parse_use_tree(self.toks, i + 1)
        frame = self.frames[-1]
        self.out.uses.append(UseDecl(frame.scope, frame.kind == "mod", leaves))
        return end + 1

    def body_after(self, i):
        """Index of the `{` opening the body of the item whose header starts at i (or None)."""
        while i < len(self.toks):
            t = self.toks[i]
            if t.text in ("(", "[") and self.match[i] is not None:
                i = self.match[i]
            elif t.text == "{":
                return i
            elif t.text == ";":
                return None
            i += 1
        return None

    def on_fn(self, i):
        frame, name = self.frames[-1], self.toks[i + 1].text
        body = self.body_after(i + 2)
        if body is not None and self.match[body] is not None:
            end = self.toks[self.match[body]].line
            self.out.fns.append(FnDef(frame.scope, frame.owner, name, self.toks[i].line, end))
            self.opens[body] = Frame(self.match[body], "fn", frame.scope, frame.owner + (name,))
        return i + 2

    def on_impl(self, i):
        body = self.body_after(i + 1)
        if body is not None and self.match[body] is not None:
            frame = self.frames[-1]
            owner = frame.owner + (impl_name(self.toks[i:body]),)
            self.opens[body] = Frame(self.match[body], "impl", frame.scope, owner)

    def on_path(self, i):
        segs, j = [self.toks[i].text], i + 1  # `$crate::x` in a macro reads as `crate::x`
        while self.tok(j).text == "::" and self.tok(j + 1).kind == "id":
            segs.append(self.toks[j + 1].text)
            j += 2
        self.out.paths.append(PathRef(self.frames[-1].scope, tuple(segs), self.toks[i].line))
        return j


def impl_name(toks):
    """The type an `impl .. {` or `trait X {` header is about (`impl<T> From<T> for Foo` -> Foo)."""
    if toks[0].text == "trait":
        return toks[1].text
    depth, name = 0, ""
    for k, t in enumerate(toks[1:], 1):
        if t.text == "<":
            depth += 1
        elif t.text == ">" and toks[k - 1].text != "-":
            depth -= 1
        elif depth == 0 and t.text == "where":
            break
        elif depth == 0 and t.kind == "id" and t.text not in ("dyn", "mut", "unsafe"):
            name = "" if t.text == "for" else t.text
    return name


def scan_source(src):
    return Scanner(lex(src)).run()


# --------------------------------------------------------------------------- module trees

class Module:
    def __init__(self, path, file, child_dir):
        self.path, self.file, self.child_dir = path, file, child_dir
        self.children, self.bindings, self.globs, self.items = {}, {}, [], set()


class Tree:
    """One crate root (lib.rs, main.rs or a bin) with the modules it reaches, test code left out."""

    def __init__(self, root, externs):
        self.root, self.externs = root, externs  # externs: crate name -> Tree (main -> lib)
        self.modules, self.file_module, self.scans, self.problems = {}, {}, {}, []

    def load(self):
        self._load_file(self.root, (), self.root.parent)
        return self

    def _load_file(self, file, path, child_dir):
        scan = scan_source(file.read_text(encoding="utf-8"))
        if scan.test_only:
            return
        self.scans[file], self.file_module[file] = scan, path
        self.modules[path] = Module(path, file, child_dir)
        for decl in scan.mods:
            self._declare(file, path, decl)
        for use in scan.uses:
            if use.item_level and path + use.scope in self.modules:
                self._bind(self.modules[path + use.scope], path + use.scope, use.leaves)
        for scope, name in scan.items:
            if path + scope in self.modules:
                self.modules[path + scope].items.add(name)

    def _declare(self, file, path, decl):
        parent = self.modules.get(path + decl.scope)
        if parent is None:
            return
        mpath = path + decl.scope + (decl.name,)
        if decl.inline:
            self.modules[mpath] = Module(mpath, file, parent.child_dir / decl.name)
        else:
            found = module_file(file, parent.child_dir, decl)
            if found is None:
                self.problems.append(f"{rel(file)}:{decl.line}: no file for `mod {decl.name};`")
                return
            self._load_file(found[0], mpath, found[1])
        if mpath in self.modules:
            parent.children[decl.name] = self.modules[mpath]

    @staticmethod
    def _bind(module, origin, leaves):
        for leaf in leaves:
            if leaf.glob:
                module.globs.append((origin, leaf.segs))
            elif leaf.alias != "_" and leaf.segs:
                module.bindings[leaf.alias or leaf.segs[-1]] = (origin, leaf.segs)


def module_file(file, child_dir, decl):
    """(file, directory of its children) that `mod name;` loads, or None."""
    if decl.path_attr:
        base = file.parent if not decl.scope else child_dir
        found = Path(os.path.normpath(base / decl.path_attr))
        return (found, found.parent) if found.is_file() else None
    for found in (child_dir / f"{decl.name}.rs", child_dir / decl.name / "mod.rs"):
        if found.is_file():
            return found, child_dir / decl.name
    return None


# --------------------------------------------------------------------------- resolution

Edge = collections.namedtuple("Edge", "src dst line text")


def anchor(tree, modpath, segs, depth=0):
    """(tree, absolute module path) for a path written in module modpath, None if external."""
    if not segs or depth > 16:
        return None
    head = segs[0]
    if head == "crate":
        return tree, segs[1:]
    if head == "self":
        return tree, modpath + segs[1:]
    if head == "super":
        ups = next((k for k, s in enumerate(segs) if s != "super"), len(segs))
        return (tree, modpath[:len(modpath) - ups] + segs[ups:]) if ups <= len(modpath) else None
    if head in tree.externs:
        return tree.externs[head], segs[1:]
    module = tree.modules.get(modpath)
    if module is None:
        return None
    if head in module.children:
        return tree, modpath + segs
    if head in module.bindings:
        origin, target = module.bindings[head]
        found = anchor(tree, origin, target, depth + 1)
        return found and (found[0], found[1] + segs[1:])
    return None


def resolve(tree, path, depth=0):
    """File of the deepest module an absolute path names, following `use` re-exports.

    None when a re-export leads out of the crate (`use velero_debug_crd::duration` in lib.rs).
    """
    module = tree.modules.get(())
    for k, name in enumerate(path):
        if name in module.children:
            module = module.children[name]
            continue
        if name in module.bindings and depth < 16:
            origin, target = module.bindings[name]
            found = anchor(tree, origin, target)
            return found and resolve(found[0], found[1] + path[k + 1:], depth + 1)
        for origin, target in module.globs:
            found = anchor(tree, origin, target)
            source = found and found[0].modules.get(found[1])
            if source and depth < 16 and (name in source.children or name in source.items
                                          or name in source.bindings):
                return resolve(found[0], found[1] + path[k:], depth + 1)
        return module.file
    return module.file


def tree_edges(tree):
    """Every reference from a file of the tree to another file, with its line."""
    edges = set()
    for file, scan in tree.scans.items():
        base = tree.file_module[file]
        refs = [(use.scope, leaf.segs, leaf.line,
                 "use " + "::".join(leaf.segs) + ("::*" if leaf.glob else ""))
                for use in scan.uses for leaf in use.leaves]
        refs += [(p.scope, p.segs, p.line, "::".join(p.segs)) for p in scan.paths]
        for scope, segs, line, text in refs:
            found = anchor(tree, base + scope, segs)
            dst = found and resolve(*found)
            if dst and dst != file:
                edges.add(Edge(file, dst, line, text))
    return edges


class Crate:
    """A crate's trees (lib first, then main and bins) and the file graph they make."""

    def __init__(self, name, src, lib_name):
        self.name, self.src = name, src
        lib = Tree(src / "lib.rs", {}).load() if (src / "lib.rs").is_file() else None
        bins = [src / "main.rs"] + sorted((src / "bin").glob("*.rs"))
        externs = {lib_name: lib} if lib else {}
        self.trees = ([lib] if lib else []) + [Tree(b, externs).load() for b in bins if b.is_file()]
        self.place = {}  # file -> (tree index, module path)
        for n, tree in enumerate(self.trees):
            for file, path in tree.file_module.items():
                self.place.setdefault(file, (n, path))
        self.edges = sorted(set().union(*(tree_edges(t) for t in self.trees)))
        self.counted = [e for e in self.edges if not self.is_parent_edge(e)]

    def is_parent_edge(self, edge):
        """A module using one of its own descendants: not part of any circle."""
        (ts, ps), (td, pd) = self.place[edge.src], self.place[edge.dst]
        return ts == td and len(pd) > len(ps) and pd[:len(ps)] == ps

    def roots(self):
        return {t.root for t in self.trees}

    def functions(self):
        for tree in self.trees:
            for file, scan in tree.scans.items():
                for fn in scan.fns:
                    yield file, tree.file_module[file] + fn.scope + fn.owner, fn


def lib_name_of(crate_dir):
    text = (crate_dir / "Cargo.toml").read_text(encoding="utf-8")
    lib = re.search(r'^\[lib\][^\[]*?^name\s*=\s*"([^"]+)"', text, re.M | re.S)
    package = re.search(r'^\[package\][^\[]*?^name\s*=\s*"([^"]+)"', text, re.M | re.S)
    return (lib or package).group(1).replace("-", "_")


# --------------------------------------------------------------------------- graphs

def graph_of(pairs):
    graph = collections.defaultdict(set)
    for a, b in pairs:
        graph[a].add(b)
    return graph


def strongly_connected(graph):
    """Tarjan's algorithm; components with more than one node, each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while v not in component:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def cycle_through(graph, inside, start):
    """The shortest cycle from start back to it within `inside`, as [start, .., start]."""
    previous, queue = {start: None}, collections.deque([start])
    while queue:
        v = queue.popleft()
        if start in graph.get(v, ()):
            path = [v]
            while previous[path[-1]] is not None:
                path.append(previous[path[-1]])
            return path[::-1] + [start]
        for w in sorted(graph.get(v, ())):
            if w in inside and w not in previous:
                previous[w] = v
                queue.append(w)
    return None


def covering_cycles(graph, component):
    """The component's shortest cycle, then the shortest through each node not yet shown."""
    inside = set(component)
    cycles = [min((cycle_through(graph, inside, v) for v in component), key=len)]
    for v in component:
        if not any(v in c for c in cycles):
            cycles.append(cycle_through(graph, inside, v))
    return cycles


def describe_circles(graph, examples, title, name, keep=lambda component: True):
    """One message per circle: its cycles, each step with the imports that make it."""
    out = []
    for component in filter(keep, strongly_connected(graph)):
        lines = [f"{title} of {len(component)}: " + " ".join(name(v) for v in component)]
        for n, cycle in enumerate(covering_cycles(graph, component), 1):
            lines.append(f"  {'shortest' if n == 1 else 'also'}: "
                         + " -> ".join(name(v) for v in cycle))
            for a, b in zip(cycle, cycle[1:]):
                shown = list({(e.src, e.line): e for e in examples[(a, b)]}.values())
                where = ", ".join(f"{rel(e.src)}:{e.line} {e.text}" for e in shown[:3])
                more = f" (+{len(shown) - 3} lines)" if len(shown) > 3 else ""
                lines.append(f"      {name(a)} -> {name(b)}: {where}{more}")
        out.append("\n".join(lines))
    return out


# --------------------------------------------------------------------------- checks

def rel(path):
    try:
        return str(Path(path).relative_to(REPO))
    except ValueError:
        return str(path)


def check_file_circles(crate):
    """Circles between files (a module using its own descendants is not a step of one)."""
    examples = collections.defaultdict(list)
    for e in crate.counted:
        examples[(e.src, e.dst)].append(e)
    return describe_circles(graph_of(examples), examples, f"circle in {crate.name}", rel)


def folder_node(folder, file):
    """The entry of `folder` that `file` belongs to (`x.rs` and `x/` are one entry)."""
    first = file.relative_to(folder).parts[0]
    stem = first.removesuffix(".rs")
    return stem + "/" if (folder / stem).is_dir() else first


def check_folder_circles(crate):
    """Per folder: circles between its files and subfolders (its own mod.rs left out).

    A circle of files only is the file circle already reported, so only those through a
    subfolder are.
    """
    out = []
    for folder in sorted({f.parent for f in crate.place}):
        own = {folder / "mod.rs"} | crate.roots()
        examples = collections.defaultdict(list)
        for e in crate.counted:
            if e.src in own or e.dst in own or folder not in e.src.parents \
                    or folder not in e.dst.parents:
                continue
            pair = (folder_node(folder, e.src), folder_node(folder, e.dst))
            if pair[0] != pair[1]:
                examples[pair].append(e)
        out += describe_circles(graph_of(examples), examples,
                                f"folder circle in {rel(folder)}/", str,
                                lambda component: any(v.endswith("/") for v in component))
    return out


def top_module(crate, file):
    return file.relative_to(crate.src).parts[0].removesuffix(".rs")


def check_layers(crate):
    """Imports from a lower layer to a higher one, and from pure cores to what they must not use."""
    layer_of = {m: layer for layer, mods in LAYERS.items() for m in mods}
    present = {top_module(crate, f) for f in crate.place}
    out = [f"{rel(crate.src / m)}: module `{m}` has no layer in LAYERS"
           for m in sorted(present - set(layer_of))]
    for e in crate.edges:
        a, b = top_module(crate, e.src), top_module(crate, e.dst)
        la, lb = layer_of.get(a), layer_of.get(b)
        if a == b or la is None or lb is None:
            continue
        if lb not in MAY_IMPORT[la] or b in NEVER_IMPORT.get(la, ()):
            out.append(f"{rel(e.src)}:{e.line}: {a} ({la}) imports {b} ({lb}): {e.text}")
    return out, sorted(set(layer_of) - present)


def check_functions(crates, max_lines):
    """Non-test functions longer than max_lines, from the `fn` line to the closing brace."""
    found = []
    for crate in crates:
        for file, owner, fn in crate.functions():
            length = fn.end - fn.start + 1
            if length > max_lines:
                found.append((length, f"{rel(file)}:{fn.start}: {'::'.join(owner + (fn.name,))} "
                                      f"is {length} lines (max {max_lines})"))
    return [text for _, text in sorted(found, key=lambda x: (-x[0], x[1]))]


# --------------------------------------------------------------------------- main

def list_edges(crate):
    for e in crate.edges:
        mark = "  (parent -> own child, not counted)" if crate.is_parent_edge(e) else ""
        print(f"{rel(e.src)} -> {rel(e.dst)}  [{e.line}: {e.text}]{mark}")


def report(title, problems):
    if problems:
        print(f"== {title}: {len(problems)}")
        for p in problems:
            print(p)
    return len(problems)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-fn-lines", type=int, default=80)
    parser.add_argument("--only", choices=("imports", "functions"))
    parser.add_argument("--list-edges", action="store_true", help="print the resolved file graph")
    args = parser.parse_args(argv)
    crates = [Crate(name, REPO / name / "src", lib_name_of(REPO / name)) for name in CRATES]
    failures = 0
    for crate in crates:
        if args.list_edges:
            list_edges(crate)
        failures += report(f"unresolved modules in {crate.name}",
                           [p for t in crate.trees for p in t.problems])
        if args.only != "functions":
            failures += report(f"file circles in {crate.name}", check_file_circles(crate))
            failures += report(f"folder circles in {crate.name}", check_folder_circles(crate))
        if args.only != "functions" and crate.name == LAYERED_CRATE:
            layer_problems, stale = check_layers(crate)
            failures += report("layer violations", layer_problems)
            for name in stale:
                print(f"note: LAYERS names `{name}`, which is not a module of {crate.name}/src")
    if args.only != "imports":
        fn_crates = [c for c in crates if c.name in FN_LENGTH_CRATES]
        failures += report("functions too long", check_functions(fn_crates, args.max_fn_lines))
    files = sum(len(c.place) for c in crates)
    skipped = sum(1 for c in crates for f in c.src.rglob("*.rs")) - files
    fns = sum(1 for c in crates if c.name in FN_LENGTH_CRATES for _ in c.functions())
    edges = sum(len({(e.src, e.dst) for e in c.edges}) for c in crates)
    print(f"layering: {files} files read ({skipped} test-only skipped), {edges} file edges, "
          f"{fns} functions counted; {failures} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
