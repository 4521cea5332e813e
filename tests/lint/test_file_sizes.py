"""Self-tests of file_sizes.py: `RepositoryTest` is the check on this tree (`make lint` runs
it); `CheckTest` proves a file one line over its limit fails and one at its limit passes."""

import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import file_sizes as F  # noqa: E402


class CheckTest(unittest.TestCase):
    def check(self, files: dict[str, int]) -> list[str]:
        with tempfile.TemporaryDirectory() as d:
            for path, lines in files.items():
                p = Path(d) / path
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text("x\n" * lines)
            return F.problems(Path(d), list(files))

    def test_a_file_over_its_limit_is_named_with_its_count(self):
        found = self.check({"operator/src/big.rs": 1001, "operator/src/fine.rs": 1000})
        self.assertEqual(len(found), 1)
        self.assertIn("operator/src/big.rs: 1001 lines, over the limit of 1000", found[0])

    def test_the_e2e_helpers_have_a_smaller_limit(self):
        found = self.check({"tests/src/helper.rs": 601, "tests/tests/e2e/long.rs": 900})
        self.assertEqual(len(found), 1)
        self.assertIn("tests/src/helper.rs: 601 lines, over the limit of 600", found[0])


class RepositoryTest(unittest.TestCase):
    def test_no_file_of_this_tree_is_over_its_limit(self):
        self.assertEqual(F.problems(F.REPO, F.tracked(F.REPO)), [])


if __name__ == "__main__":
    unittest.main()
