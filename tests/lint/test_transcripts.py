"""The transcript check: README.md and docs/ quote what `make demo` recorded.

`RepositoryTest` is the check itself (`make lint` runs it); the others prove that it passes a
quote from another run and fails a quote that drifted.
"""

import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transcripts as T  # noqa: E402

# Two runs of the demo: different clocks, names, sums, sizes, URLs, ages and padding.
RUN_1 = """\
$ kubectl velero-debug create restore restore-1795392752 --wait --download
restore-restore-1795392752-4hbsp
restore-restore-1795392752-4hbsp: Collecting (target, 0/8 steps done)
restore-restore-1795392752-4hbsp: Uploading (0/16644 bytes)
DebugBundle restore-restore-1795392752-4hbsp Completed
restore-restore-1795392752-4hbsp.tar.gz: sha256 c7b9639697019e6088d58afd5117ac4882088bb786adfb78871cb4033365ba6a verified
[06:14:06] demo: auto-restore-restore-1795392752 Completed 2 s after the restore ended
NAME                                TARGET                       PHASE       SIZE    AGE
auto-restore-restore-1795392752     restore/restore-1795392752   Completed   9876    59s
url http://localhost:40123/velero/x.tar.gz?X-Amz-Signature=abc&X-Amz-Expires=86400
- Started: 2026-11-23T06:14:03Z
$ kubectl velero-debug list -l velerodebug.io/target-uid=0b6f8a52-3f7e-4a71-9d7c-2c4f5e6a7b8c
"""
RUN_2 = """\
$ kubectl velero-debug create restore restore-1795414441 --wait --download
restore-restore-1795414441-x7k2q
restore-restore-1795414441-x7k2q: Collecting (target, 0/8 steps done)
restore-restore-1795414441-x7k2q: Uploading (0/101234 bytes)
DebugBundle restore-restore-1795414441-x7k2q Completed
restore-restore-1795414441-x7k2q.tar.gz: sha256 088ad9325ee967a1e88957cf06c0ceb64c615e69f7d2bf62ebcc838987b4aa29 verified
[19:02:44] demo: auto-restore-restore-1795414441 Completed 12 s after the restore ended
NAME                              TARGET                       PHASE       SIZE     AGE
auto-restore-restore-1795414441   restore/restore-1795414441   Completed   101234   1m
url http://localhost:36011/velero/x.tar.gz?X-Amz-Signature=def&X-Amz-Expires=3600
- Started: 2026-11-25T19:02:40Z
$ kubectl velero-debug list -l velerodebug.io/target-uid=9e1d2c3b-4a5f-4e6d-8c7b-1a2b3c4d5e6f
"""


def document(body: str, marker: str = "<!-- transcript: first-bundle -->") -> str:
    return f"# Title\n\n{marker}\n\n```console\n{body}```\n\nAfter.\n"


class Repo:
    """A throwaway repository with one recording and a README."""

    def __init__(self, recording: str, readme: str):
        self.dir = tempfile.TemporaryDirectory()
        self.path = Path(self.dir.name)
        (self.path / "docs" / "transcripts").mkdir(parents=True)
        (self.path / "docs" / "transcripts" / "first-bundle.txt").write_text(recording)
        (self.path / "README.md").write_text(readme)

    def __enter__(self):
        return self.path

    def __exit__(self, *_):
        self.dir.cleanup()


class NormaliseTest(unittest.TestCase):
    def test_two_runs_are_the_same_transcript(self):
        self.assertEqual(T.normalise(RUN_1), T.normalise(RUN_2))

    def test_what_varies_becomes_a_placeholder(self):
        line = T.normalise(RUN_1)[5]
        self.assertEqual(line, "restore-restore-<epoch>-<suffix>.tar.gz: sha256 <sha256> verified")
        self.assertIn("?<query>", T.normalise(RUN_1)[9])

    def test_a_real_change_survives(self):
        added_column = RUN_2.replace("SIZE     AGE", "SIZE     FINDING   AGE")
        self.assertNotEqual(T.normalise(RUN_1), T.normalise(added_column))
        other_step = RUN_2.replace("(target, 0/8 steps", "(target, 0/9 steps")
        self.assertNotEqual(T.normalise(RUN_1), T.normalise(other_step))
        self.assertNotEqual(T.normalise(RUN_1), T.normalise(RUN_2.replace("Completed 12", "Failed 12")))


class CheckTest(unittest.TestCase):
    def test_a_quote_of_another_run_passes(self):
        with Repo(RUN_1, document(RUN_2)) as repo:
            self.assertEqual(T.check(repo), [])

    def test_a_drifted_quote_fails_naming_the_line(self):
        drifted = RUN_2.replace("verified\n", "verified\nsummary.md: 3 findings\n")
        with Repo(RUN_1, document(drifted)) as repo:
            found = T.check(repo)
        self.assertEqual(len(found), 1, found)
        self.assertIn("README.md:5: transcript first-bundle", found[0])

    def test_a_changed_line_fails(self):
        changed = RUN_2.replace("Collecting (target,", "Collecting (objects,")
        with Repo(RUN_1, document(changed)) as repo:
            self.assertIn("differs from its recording at line 3", T.check(repo)[0])

    def test_head_quotes_the_first_lines(self):
        head = "".join(RUN_2.splitlines(keepends=True)[:3]) + "...\n"
        marker = "<!-- transcript: first-bundle head=3 -->"
        with Repo(RUN_1, document(head, marker)) as repo:
            self.assertEqual(T.check(repo), [])
        with Repo(RUN_1, document(head.replace("...\n", ""), marker)) as repo:
            self.assertEqual(len(T.check(repo)), 1)

    def test_an_unmarked_console_block_fails_and_a_sh_block_passes(self):
        readme = document(RUN_2) + "\n```console\n$ make demo\nmade up\n```\n\n```sh\nmake test\n```\n"
        with Repo(RUN_1, readme) as repo:
            found = T.check(repo)
        self.assertEqual(len(found), 1, found)
        self.assertIn("a console block that quotes no recording", found[0])

    def test_a_missing_recording_and_an_unquoted_one_fail(self):
        with Repo(RUN_1, document(RUN_2, "<!-- transcript: summary -->")) as repo:
            found = T.check(repo)
        self.assertEqual(len(found), 2, found)
        self.assertIn("no recording docs/transcripts/summary.txt", found[0])
        self.assertIn("first-bundle.txt: recorded by the demo but quoted nowhere", found[1])

    def test_write_takes_the_recording(self):
        with Repo(RUN_1, document("stale\n")) as repo:
            T.write(repo)
            self.assertEqual(T.check(repo), [])
            self.assertIn("restore-1795392752-4hbsp: Uploading", (repo / "README.md").read_text())


class RepositoryTest(unittest.TestCase):
    def test_readme_and_docs_quote_what_the_demo_recorded(self):
        found = T.check(T.REPO)
        self.assertEqual(found, [], "\n" + "\n".join(found))


if __name__ == "__main__":
    unittest.main()
