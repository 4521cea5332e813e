"""Self-tests of unit_test_files.py: a file's unit tests are its own `tests` module.

`RepositoryTest` is the check itself (`make lint` runs it); `CheckTest` proves it passes the
three allowed forms and fails on tests declared by a parent, on a tests file its subject does
not attach, and on an attachment of the wrong shape.
"""

import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import unit_test_files as U  # noqa: E402

LIB = "mod alpha;\nmod beta;\nmod gamma;\n"
# alpha.rs: tests beside it; beta/mod.rs: tests beside it, named after the folder, shared with
# siblings; gamma.rs: inline tests.
ALPHA = '//! Alpha.\n\nfn a() {}\n\n#[cfg(test)]\n#[path = "alpha_tests.rs"]\nmod tests;\n'
ALPHA_TESTS = ('use super::*;\n\n#[path = "../testdata/samples.rs"]\nmod samples;\n\n'
               '#[test]\nfn a_runs() {\n    a();\n}\n')
BETA = ('mod child;\n\nfn b() {}\n\n#[cfg(test)]\n#[path = "beta_tests.rs"]\n'
        'pub(super) mod tests;\n')
GAMMA = ('fn c() {}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn c_runs() {\n'
         '        super::c();\n    }\n}\n')


def tree(files: dict[str, str]) -> list[str]:
    """The check's report on operator/src made of `files` (path under src -> text)."""
    base = {"lib.rs": LIB, "alpha.rs": ALPHA, "alpha_tests.rs": ALPHA_TESTS, "beta/mod.rs": BETA,
            "beta/child.rs": "fn child() {}\n", "beta/beta_tests.rs": "#[test]\nfn b() {}\n",
            "gamma.rs": GAMMA}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for path, text in {**base, **files}.items():
            if text is None:
                continue
            file = root / "operator" / "src" / path
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text)
        return U.check(root)


class CheckTest(unittest.TestCase):
    def test_inline_beside_and_folder_named_tests_pass_a_data_include_is_left_alone(self):
        self.assertEqual(tree({}), [])

    def test_tests_declared_by_the_parent_fail(self):
        found = tree({"beta/mod.rs": BETA + "\n#[cfg(test)]\nmod child_tests;\n",
                      "beta/child_tests.rs": "#[test]\nfn c() {}\n"})
        self.assertEqual(len(found), 2, found)
        self.assertTrue(found[0].startswith("operator/src/beta/mod.rs:10: `mod child_tests;` "
                                            "declares tests outside the file they test"), found)
        self.assertTrue(found[1].startswith(
            'operator/src/beta/child_tests.rs: attached by no `#[cfg(test)] #[path = '
            '"child_tests.rs"] mod tests;` in its subject file (operator/src/beta/child.rs)'),
            found)

    def test_a_tests_file_nothing_attaches_fails(self):
        found = tree({"alpha.rs": "fn a() {}\n"})
        self.assertEqual(found, [
            'operator/src/alpha_tests.rs: attached by no `#[cfg(test)] #[path = '
            '"alpha_tests.rs"] mod tests;` in its subject file (operator/src/alpha.rs)'])

    def test_a_tests_file_attached_from_another_file_fails(self):
        attach = '#[cfg(test)]\n#[path = "alpha_tests.rs"]\nmod tests;\n'
        found = tree({"alpha.rs": "fn a() {}\n", "gamma.rs": "fn c() {}\n\n" + attach})
        self.assertEqual(found[0], "operator/src/gamma.rs:5: attaches alpha_tests.rs but "
                                   "operator/src/gamma.rs's tests file is gamma_tests.rs")
        self.assertTrue(found[1].startswith("operator/src/alpha_tests.rs: attached by no"), found)

    def test_a_mod_rs_tests_file_is_named_after_its_folder(self):
        found = tree({"beta/mod.rs": BETA.replace("beta_tests.rs", "mod_tests.rs"),
                      "beta/beta_tests.rs": None, "beta/mod_tests.rs": "#[test]\nfn b() {}\n"})
        self.assertEqual(found, [
            "operator/src/beta/mod.rs:7: attaches mod_tests.rs but operator/src/beta/mod.rs's "
            "tests file is beta_tests.rs",
            "operator/src/beta/mod_tests.rs: a mod.rs's tests file is named after its folder: "
            "beta_tests.rs"])

    def test_an_attachment_of_the_wrong_shape_fails(self):
        found = tree({"alpha.rs": 'fn a() {}\n\n#[path = "alpha_tests.rs"]\nmod checks;\n'})
        self.assertEqual(found, ["operator/src/alpha.rs:4: attaches alpha_tests.rs as "
                                 "`mod checks`, not `mod tests`, without #[cfg(test)]",
                                 "operator/src/alpha_tests.rs: attached by no `#[cfg(test)] "
                                 '#[path = "alpha_tests.rs"] mod tests;` in its subject file '
                                 "(operator/src/alpha.rs)"])

    def test_a_tests_file_of_another_folder_fails(self):
        attach = '\n#[cfg(test)]\n#[path = "../alpha_tests.rs"]\nmod more;\n'
        found = tree({"beta/mod.rs": BETA + attach})
        self.assertEqual(found[0], "operator/src/beta/mod.rs:11: attaches ../alpha_tests.rs as "
                                   "`mod more`, not `mod tests`, from another folder")

    def test_comments_and_strings_are_not_declarations(self):
        lookalikes = '// mod x_tests;\nconst S: &str = "mod y_tests;";\n'
        self.assertEqual(tree({"gamma.rs": GAMMA + lookalikes}), [])


class RepositoryTest(unittest.TestCase):
    def test_every_tests_file_is_attached_from_its_subject(self):
        found = U.check(U.REPO)
        self.assertEqual(found, [], "\n" + "\n".join(found))


if __name__ == "__main__":
    unittest.main()
