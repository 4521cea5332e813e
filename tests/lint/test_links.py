"""Relative links of README.md, docs/ and the other Markdown files lead somewhere.

`RepositoryTest` is the check itself (`make lint` runs it); `CheckTest` proves it fails on a
missing file and a missing heading, and leaves URLs and code alone.
"""

import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import links as L  # noqa: E402

README = """\
# Project

See [design](docs/design.md#leader-election), [the env](docs/design.md#the-env-testsenv)
and [the web](https://example.com/x.md#nowhere).

```sh
echo "[not a link](docs/gone.md)"
```

Inline `[not a link](docs/gone.md)` either.
"""
DESIGN = "# Design\n\n## Leader election\n\n## The env (`tests/env/`)\n"


def check(readme: str, design: str = DESIGN) -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "docs").mkdir()
        (root / "README.md").write_text(readme)
        (root / "docs" / "design.md").write_text(design)
        return L.check(root)


class CheckTest(unittest.TestCase):
    def test_links_to_files_and_headings_pass_urls_and_code_are_skipped(self):
        self.assertEqual(check(README), [])

    def test_a_missing_file_fails(self):
        self.assertEqual(check(README.replace("docs/design.md#leader", "docs/desing.md#leader")),
                         ["README.md:3: docs/desing.md#leader-election: no such file"])

    def test_a_missing_heading_fails(self):
        found = check(README, DESIGN.replace("## Leader election", "## Leadership"))
        self.assertEqual(found, ["README.md:3: docs/design.md#leader-election: "
                                 "no heading #leader-election in docs/design.md"])


class RepositoryTest(unittest.TestCase):
    def test_every_relative_link_leads_somewhere(self):
        found = L.check(L.REPO)
        self.assertEqual(found, [], "\n" + "\n".join(found))


if __name__ == "__main__":
    unittest.main()
