"""Self-tests of architecture_diagram.py: CONTRIBUTING.md's diagram against LAYERS.

`RepositoryTest` is the check itself (`make lint` runs it); `CheckTest` proves it fails when a
module is added to the code (LAYERS, operator/src) and not to the diagram, when one is drawn
that the code does not have, in another layer, or as a file where it is a folder.
"""

import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import architecture_diagram as A  # noqa: E402

LAYERS = {"entry": ["lib", "main"], "controllers": ["bundle"],
          "adapters": ["storage", "spool"], "cores": ["velero"]}
DIAGRAM = """\
# Contributing

## Architecture

Imports point down.

```
 entry         lib.rs (crate root)  main.rs (the binary: parses
               its flags, not.rs a module)
                    |
                    v
 controllers   bundle/ (one DebugBundle; spool.rs (nested) is not read)
                    |
                    v
 I/O adapters  storage/ (S3)  spool.rs
 pure cores    velero.rs (no I/O module, nothing of tar_gz or bundle)
```

Text below: `other.rs` is not in the diagram.

## Layout
"""
LIB = "mod bundle;\nmod spool;\nmod storage;\nmod velero;\n#[cfg(test)]\nmod test_support;\n"
FILES = {"lib.rs": LIB, "main.rs": "fn main() {}\n", "bundle/mod.rs": "", "spool.rs": "",
         "storage/mod.rs": "", "velero.rs": "", "test_support/mod.rs": ""}


def check(diagram=DIAGRAM, layers=None, files=None):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "CONTRIBUTING.md").write_text(diagram)
        for path, text in {**FILES, **(files or {})}.items():
            file = root / "operator" / "src" / path
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text)
        return A.check(root, layers or LAYERS)


class CheckTest(unittest.TestCase):
    def test_the_diagram_of_the_code_passes_parentheses_and_prose_are_not_read(self):
        self.assertEqual(check(), [])

    def test_a_module_added_to_the_code_and_not_to_the_diagram_fails(self):
        layers = {**LAYERS, "adapters": LAYERS["adapters"] + ["metrics"]}
        found = check(layers=layers, files={"lib.rs": LIB + "mod metrics;\n", "metrics.rs": ""})
        self.assertEqual(found, ["CONTRIBUTING.md: module `metrics` is missing from the "
                                 "Architecture diagram (LAYERS puts it in adapters)"])

    def test_a_module_the_crate_declares_is_missing_even_without_a_layer(self):
        found = check(files={"lib.rs": LIB + "mod args;\n", "args.rs": ""})
        self.assertEqual(found, ["CONTRIBUTING.md: module `args` is missing from the "
                                 "Architecture diagram (operator/src's crate roots declare it; "
                                 "LAYERS has no layer for it)"])

    def test_a_module_drawn_that_the_code_does_not_have_fails(self):
        found = check(DIAGRAM.replace("storage/ (S3)", "storage/ (S3)  gone.rs"))
        self.assertEqual(found, [
            "CONTRIBUTING.md:15: `gone.rs` is in the diagram (adapters), but LAYERS "
            "(tests/lint/layering.py) has no module `gone`",
            "CONTRIBUTING.md:15: `gone.rs`: operator/src has no gone.rs or gone/"])

    def test_a_module_removed_from_the_diagram_fails(self):
        found = check(DIAGRAM.replace("storage/ (S3)  spool.rs", "storage/ (S3)"))
        self.assertEqual(found, ["CONTRIBUTING.md: module `spool` is missing from the "
                                 "Architecture diagram (LAYERS puts it in adapters)"])

    def test_a_module_in_another_layer_fails(self):
        diagram = DIAGRAM.replace("  spool.rs\n", "\n").replace(
            "velero.rs (no", "spool.rs  velero.rs (no")
        self.assertEqual(check(diagram), ["CONTRIBUTING.md:16: `spool.rs` is drawn in cores; "
                                          "LAYERS puts `spool` in adapters"])

    def test_a_file_written_as_a_folder_and_a_folder_as_a_file_fail(self):
        diagram = DIAGRAM.replace("bundle/ (one", "bundle.rs (one").replace("spool.rs\n",
                                                                         "spool/\n")
        self.assertEqual(check(diagram), [
            "CONTRIBUTING.md:12: `bundle.rs` is a folder: write `bundle/`",
            "CONTRIBUTING.md:15: `spool/` is a file: write `spool.rs`"])

    def test_a_module_drawn_twice_and_an_unknown_label_fail(self):
        diagram = DIAGRAM.replace(" pure cores    velero.rs", " pure kernels  velero.rs  main.rs")
        self.assertEqual(check(diagram), [
            "CONTRIBUTING.md:16: label `pure kernels` names no layer of LAYERS "
            "(entry, controllers, adapters, cores)",
            "CONTRIBUTING.md: `main` is drawn 2 times"])

    def test_layers_out_of_order_fail(self):
        diagram = DIAGRAM.replace(" I/O adapters  storage/ (S3)  spool.rs\n", "").replace(
            " pure cores    velero.rs", " I/O adapters  storage/ (S3)  spool.rs\n"
            " pure cores    velero.rs").replace(" entry  ", " cores  ", 1)
        self.assertIn("CONTRIBUTING.md:8: the diagram's layers run cores, controllers, "
                      "adapters, cores; LAYERS' run entry, controllers, adapters, cores",
                      check(diagram))

    def test_no_diagram_fails(self):
        self.assertEqual(check("# Contributing\n\n## Architecture\n\nProse.\n\n## Layout\n"),
                         ["CONTRIBUTING.md: no fenced diagram under '## Architecture'"])


class RepositoryTest(unittest.TestCase):
    def test_the_diagram_agrees_with_layers_and_the_tree(self):
        found = A.check(A.REPO)
        self.assertEqual(found, [], "\n" + "\n".join(found))


if __name__ == "__main__":
    unittest.main()
