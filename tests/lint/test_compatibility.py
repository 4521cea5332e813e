"""Self-tests of compatibility.py: `RepositoryTest` is the check on this tree (`make lint` runs
it); `CheckTest` proves a result the doc does not show fails, and a run's output is read."""

import json
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compatibility as C  # noqa: E402

LOG = """running 2 tests
test real_node::a_healthy ... ok
test auto_bundles::a_partially_failed ... FAILED
"""


class CheckTest(unittest.TestCase):
    def setUp(self):
        self.root = Path(tempfile.mkdtemp())
        (self.root / C.SCENARIOS).parent.mkdir(parents=True)
        (self.root / C.SCENARIOS).write_text(
            "# scenario\ttest\nhealthy\treal_node::a_healthy\n"
            "automatic\tauto_bundles::a_partially_failed\nkept off\treal_node::serial_kept_off\n")
        (self.root / C.RESULTS).mkdir(parents=True)
        self.write("v1.14.1", C.record(self.root, "v1.14.1", LOG, "abc1234", "2026-11-29"))
        (self.root / C.DOC).write_text("# Compatibility\n\n" + C.BEGIN + "\n" + C.END + "\n\nMore.\n")
        doc = (self.root / C.DOC).read_text()
        (self.root / C.DOC).write_text(C.replaced(doc, C.render(self.root)))

    def tearDown(self):
        shutil.rmtree(self.root)

    def write(self, version, results):
        (self.root / C.RESULTS / f"{version}.json").write_text(json.dumps(results))

    def test_a_run_s_output_gives_each_scenario_its_result(self):
        results = json.loads((self.root / C.RESULTS / "v1.14.1.json").read_text())
        self.assertEqual(results["scenarios"], {
            "real_node::a_healthy": "passed",
            "auto_bundles::a_partially_failed": "failed",
            "real_node::serial_kept_off": "not run",
        })

    def test_the_rendered_table_passes_and_keeps_the_rest_of_the_doc(self):
        self.assertEqual(C.problems(self.root), [])
        doc = (self.root / C.DOC).read_text()
        self.assertIn("| healthy | passed |", doc)
        self.assertIn("| v1.14.1 (2026-11-29, abc1234) |", doc)
        self.assertTrue(doc.endswith("More.\n"))

    def test_a_result_the_doc_does_not_show_fails(self):
        self.write("v1.16.2", C.record(self.root, "v1.16.2", LOG, "def5678", "2026-11-30"))
        found = C.problems(self.root)
        self.assertEqual(len(found), 1)
        self.assertIn("differs from the results", found[0])

    def test_a_hand_edited_cell_fails(self):
        doc = (self.root / C.DOC).read_text().replace("| automatic | failed |", "| automatic | passed |")
        (self.root / C.DOC).write_text(doc)
        self.assertEqual(len(C.problems(self.root)), 1)


class RepositoryTest(unittest.TestCase):
    def test_the_doc_shows_the_results_of_the_last_runs(self):
        self.assertEqual(C.problems(C.REPO), [])


if __name__ == "__main__":
    unittest.main()
