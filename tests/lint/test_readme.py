"""README.md stays a page a new reader reads through: at most 200 lines (the rest is docs/)."""

import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MAX_LINES = 200


def too_long(text: str) -> bool:
    return len(text.splitlines()) > MAX_LINES


class ReadmeTest(unittest.TestCase):
    def test_the_limit_can_be_exceeded(self):
        self.assertTrue(too_long("line\n" * (MAX_LINES + 1)))
        self.assertFalse(too_long("line\n" * MAX_LINES))

    def test_the_readme_is_at_most_200_lines(self):
        lines = len((REPO / "README.md").read_text().splitlines())
        self.assertLessEqual(lines, MAX_LINES, "move the detail to docs/")


if __name__ == "__main__":
    unittest.main()
