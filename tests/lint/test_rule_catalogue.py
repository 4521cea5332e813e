"""The rule catalogue check: every finding rule id of the code has a row in docs/diagnosis.md.

`RepositoryTest` is the check itself (`make lint` runs it); the others prove it fails on a rule
without a row and on a row without a rule.
"""

import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rule_catalogue as R  # noqa: E402

RULE_SOURCE = '''\
//! Not a rule: "comment-only-id".
pub(super) fn quota_exceeded(e: &Evidence) -> Vec<Finding> {
    objects_rule(e, Pattern::QuotaExceeded, "quota-exceeded", "refused by a ResourceQuota")
}
fn why(e: &Evidence) -> Blocked {
    Blocked { rule: "pvc-pending", cause: "a claim not bound".into() }
}
#[cfg(test)]
mod tests {
    const FIXTURE: &str = "node-agent-tainted";
}
'''
CATALOGUE = '''\
| rule | severity | means |
| --- | --- | --- |
| `quota-exceeded` | error | objects refused by a ResourceQuota |
| `pvc-pending` | error | a claim not bound |
'''


def repo_with(source: str, catalogue: str) -> tempfile.TemporaryDirectory:
    folder = tempfile.TemporaryDirectory()
    root = Path(folder.name)
    (root / R.RULES).mkdir(parents=True)
    (root / R.RULES / "items.rs").write_text(source)
    (root / "docs").mkdir()
    (root / R.CATALOGUE).write_text(catalogue)
    return folder


class CheckTest(unittest.TestCase):
    def test_ids_come_from_code_not_comments_nor_tests(self):
        with repo_with(RULE_SOURCE, CATALOGUE) as root:
            self.assertEqual(R.rule_ids_in_code(Path(root)), {"quota-exceeded", "pvc-pending"})
            self.assertEqual(R.check(Path(root)), [])

    def test_a_rule_without_a_row_fails(self):
        source = RULE_SOURCE.replace('"pvc-pending"', '"pvc-lost"')
        with repo_with(source, CATALOGUE) as root:
            found = R.check(Path(root))
        self.assertEqual(found, [
            "docs/diagnosis.md: no row for rule `pvc-lost` (operator/src/findings/rules/)",
            "docs/diagnosis.md: row `pvc-pending` names no rule of operator/src/findings/rules/",
        ])

    def test_a_duplicate_row_fails(self):
        with repo_with(RULE_SOURCE, CATALOGUE + "| `pvc-pending` | error | again |\n") as root:
            self.assertEqual(R.check(Path(root)),
                             ["docs/diagnosis.md: rule `pvc-pending` has more than one row"])


class RepositoryTest(unittest.TestCase):
    def test_every_rule_of_the_code_has_a_row_and_every_row_a_rule(self):
        found = R.check(R.REPO)
        self.assertEqual(found, [], "\n" + "\n".join(found))


if __name__ == "__main__":
    unittest.main()
