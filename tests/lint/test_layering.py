"""Self-tests of layering.py: its lexer, `use` parser, resolution and circle detection.

Run with `python3 -m unittest discover -s tests/lint`.
"""

import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import layering as L  # noqa: E402


def texts(src):
    return [t.text for t in L.lex(src)]


class LexerTest(unittest.TestCase):
    def test_comments_are_dropped_even_nested(self):
        src = "// use crate::x;\n/* use crate::y; /* nested } */ still { comment */ fn f() {}\n"
        self.assertEqual(texts(src), ["fn", "f", "(", ")", "{", "}"])

    def test_comment_with_use_makes_no_use_nor_path(self):
        scan = L.scan_source("/// see [`x`](crate::x)\n// use crate::y;\nfn f() {}\n")
        self.assertEqual((scan.uses, scan.paths), ([], []))

    def test_raw_string_with_braces_and_quotes(self):
        src = 'fn f() -> &\'static str {\n    r#"{ "}" {"#\n}\nfn g() {}\n'
        lits = [t.text for t in L.lex(src) if t.kind == "lit"]
        self.assertEqual(lits, ['r#"{ "}" {"#'])
        scan = L.scan_source(src)
        self.assertEqual([(f.name, f.start, f.end) for f in scan.fns], [("f", 1, 3), ("g", 4, 4)])

    def test_strings_escapes_and_byte_strings(self):
        toks = L.lex(r'let a = "x\"{"; let b = b"}"; let c = br"{"; let d = c"}";')
        self.assertEqual([t.text for t in toks if t.kind == "lit"],
                         [r'"x\"{"', 'b"}"', 'br"{"', 'c"}"'])
        self.assertNotIn("{", [t.text for t in toks if t.kind == "punct"])

    def test_lifetimes_versus_chars(self):
        src = ("fn f<'a>(x: &'a str) -> char {\n  let c = '{'; let q = '\\''; let b = b'}';\n"
               "  'outer: loop { break 'outer; }\n  c\n}\n")
        toks = L.lex(src)
        self.assertEqual([t.text for t in toks if t.kind == "life"],
                         ["'a", "'a", "'outer", "'outer"])
        self.assertEqual([t.text for t in toks if t.kind == "lit"], ["'{'", "'\\''", "b'}'"])
        self.assertEqual([(f.name, f.start, f.end) for f in L.scan_source(src).fns], [("f", 1, 5)])

    def test_line_numbers_after_multiline_string(self):
        self.assertEqual(L.scan_source('const S: &str = "a\nb\n";\nfn x() {}\n').fns[0].start, 4)


class UseTreeTest(unittest.TestCase):
    def leaves(self, src):
        leaves, _ = L.parse_use_tree(L.lex(src), 1)
        return [(leaf.segs, leaf.alias, leaf.glob) for leaf in leaves]

    def test_grouped_nested_alias_glob_self(self):
        self.assertEqual(self.leaves("use crate::{a, b::{c, d as e}, f::*, g::{self}};"), [
            (("crate", "a"), None, False),
            (("crate", "b", "c"), None, False),
            (("crate", "b", "d"), "e", False),
            (("crate", "f"), None, True),
            (("crate", "g"), None, False),
        ])

    def test_super_chain_and_leading_colons(self):
        self.assertEqual(self.leaves("use super::super::x::Y;"),
                         [(("super", "super", "x", "Y"), None, False)])
        self.assertEqual(self.leaves("use ::std::io;"), [(("", "std", "io"), None, False)])

    def test_super_chain_is_anchored_from_the_module(self):
        tree = L.Tree(Path("lib.rs"), {})
        tree.modules[("p", "q", "r")] = L.Module(("p", "q", "r"), Path("r.rs"), Path("."))
        self.assertEqual(L.anchor(tree, ("p", "q", "r"), ("super", "super", "x", "Y"))[1],
                         ("p", "x", "Y"))
        self.assertIsNone(L.anchor(tree, ("p",), ("super", "super", "x")))

    def test_pub_crate_use_is_a_use(self):
        scan = L.scan_source("pub(crate) use crate::a::B;\n")
        self.assertEqual([u.leaves[0].segs for u in scan.uses], [("crate", "a", "B")])


class ScannerTest(unittest.TestCase):
    def test_test_code_is_left_out(self):
        scan = L.scan_source(
            "use crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n    #[test]\n"
            "    fn t() { crate::b::x(); }\n}\n#[tokio::test(flavor = \"multi_thread\")]\n"
            "async fn t2() {}\n#[cfg(test)]\nfn helper() {}\nfn real() { crate::c::X; }\n")
        self.assertEqual([leaf.segs for u in scan.uses for leaf in u.leaves], [("crate", "a")])
        self.assertEqual([f.name for f in scan.fns], ["real"])
        self.assertEqual([p.segs for p in scan.paths], [("crate", "c", "X")])

    def test_cfg_predicates(self):
        def is_test(attr):
            return L.is_test_attribute(L.lex(attr))
        self.assertTrue(is_test("cfg(all(test, unix))"))
        self.assertFalse(is_test("cfg(any(test, unix))"))
        self.assertFalse(is_test("cfg(not(test))"))
        self.assertFalse(is_test("cfg_attr(test, allow(dead_code))"))

    def test_inline_paths_in_code_types_and_attributes(self):
        scan = L.scan_source(
            "#[arg(default_value_t = crate::config::N)]\nstruct A { s: crate::orphans::Sweeps }\n"
            "fn f() { let _ = super::tls::ca_pem(); self::g(); }\npub(in crate::x) fn g() {}\n")
        self.assertEqual([p.segs for p in scan.paths if p.segs[0] in ("crate", "super", "self")], [
            ("crate", "config", "N"), ("crate", "orphans", "Sweeps"),
            ("super", "tls", "ca_pem"), ("self", "g")])

    def test_method_names_carry_their_type(self):
        scan = L.scan_source("impl<T: Fn() -> u8> Foo<T> { fn bar(&self) {} }\n"
                             "impl std::fmt::Display for Baz { fn fmt(&self) {} }\n"
                             "fn outer() -> impl Iterator<Item = u8> { fn inner() {} }\n")
        self.assertEqual([(f.owner, f.name) for f in scan.fns], [
            (("Foo",), "bar"), (("Baz",), "fmt"), ((), "outer"), (("outer",), "inner")])


class CrateTest(unittest.TestCase):
    def crate(self, files, name="t"):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        for path, text in files.items():
            (Path(tmp.name) / path).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp.name) / path).write_text(text)
        return L.Crate(name, Path(tmp.name) / "src", name)

    def edges(self, crate):
        return {(e.src.relative_to(crate.src).as_posix(), e.dst.relative_to(crate.src).as_posix())
                for e in crate.edges}

    def test_three_file_circle_is_reported(self):
        crate = self.crate({
            "src/lib.rs": "mod a;\nmod b;\nmod c;\n",
            "src/a.rs": "use crate::b::B;\npub struct A;\n",
            "src/b.rs": "pub struct B;\npub fn f() {\n    crate::c::g();\n}\n",
            "src/c.rs": "/* use crate::b; */\npub fn g() {\n    let _ = super::a::A;\n}\n",
        })
        circles = L.check_file_circles(crate)
        self.assertEqual(len(circles), 1)
        self.assertIn("circle in t of 3", circles[0])
        self.assertIn("a.rs -> ", circles[0])
        self.assertIn("c.rs:3 super::a::A", circles[0])
        self.assertNotIn("c.rs -> " + str(crate.src / "b.rs"), circles[0])

    def test_parent_using_its_child_is_not_a_circle(self):
        crate = self.crate({
            "src/lib.rs": "mod p;\n",
            "src/p/mod.rs": "mod child;\npub use child::X;\npub struct P;\n"
                            "pub fn f() -> X { child::make() }\n",
            "src/p/child.rs": "use super::P;\npub struct X;\npub fn make() -> X { X }\n",
        })
        self.assertEqual(self.edges(crate),
                         {("p/mod.rs", "p/child.rs"), ("p/child.rs", "p/mod.rs")})
        self.assertEqual(L.check_file_circles(crate), [])
        self.assertEqual(L.check_folder_circles(crate), [])

    def test_reexport_resolves_to_the_defining_file(self):
        crate = self.crate({
            "src/lib.rs": "mod p;\nmod q;\n",
            "src/p/mod.rs": "mod inner;\npub(crate) use inner::Thing;\n",
            "src/p/inner.rs": "pub struct Thing;\n",
            "src/q.rs": "use crate::p::Thing;\nfn f() { crate::p::inner::Thing; }\n",
        })
        self.assertIn(("q.rs", "p/inner.rs"), self.edges(crate))
        self.assertNotIn(("q.rs", "p/mod.rs"), self.edges(crate))

    def test_path_attribute_and_test_only_files(self):
        crate = self.crate({
            "src/lib.rs": '#[path = "other/impl_file.rs"]\nmod renamed;\n'
                          '#[cfg(test)]\nmod tests;\n',
            "src/other/impl_file.rs": "pub fn f() {}\n",
            "src/tests.rs": "use crate::renamed;\n",
        })
        self.assertEqual(sorted(p.name for p in crate.place), ["impl_file.rs", "lib.rs"])

    def test_folder_circle_through_subfolders(self):
        crate = self.crate({
            "src/lib.rs": "mod x;\nmod y;\n",
            "src/x/mod.rs": "mod a;\n",
            "src/x/a.rs": "use crate::y::b::B;\npub struct A;\n",
            "src/y/mod.rs": "pub mod b;\n",
            "src/y/b.rs": "pub struct B;\nfn f() { let _ = crate::x::a::A; }\n",
        })
        folders = L.check_folder_circles(crate)
        self.assertEqual(len(folders), 1)
        self.assertIn("x/ -> y/ -> x/", folders[0])

    def test_main_reaches_the_lib_through_the_crate_name(self):
        crate = self.crate({
            "src/lib.rs": "pub mod run;\npub use run::go;\n",
            "src/run.rs": "pub fn go() {}\n",
            "src/main.rs": "fn main() { t::go(); }\n",
        })
        self.assertIn(("main.rs", "run.rs"), self.edges(crate))

    def test_function_length_skips_tests(self):
        crate = self.crate(
            {"src/lib.rs": "fn long() {\n    1;\n    2;\n}\n#[test]\nfn t() {\n\n\n}\n"})
        found = L.check_functions([crate], 3)
        self.assertEqual(len(found), 1)
        self.assertIn("long is 4 lines", found[0])


if __name__ == "__main__":
    unittest.main()
