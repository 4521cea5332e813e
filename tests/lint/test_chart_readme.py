"""The chart's README.md is what tests/lint/chart-readme.py makes of values.yaml.

`RepositoryTest` is the check itself (`make lint` runs it); the others prove that it fails when
values.yaml changes without the README, and when a value has no comment.
"""

import importlib.util
import shutil
import tempfile
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("chart_readme", REPO / "tests/lint/chart-readme.py")
chart_readme = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(chart_readme)

VALUES = """\
# The file's own header: no value's description.

image:
  # Where the image is pulled from.
  repository: ghcr.io/x/y
  # Default: the chart's appVersion.
  tag: ""
# Extra flags, for example:
#   - --log-json=false
extraArgs: []
# Spread over nodes.
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
# Sent with every request.
credentialSecrets:
  - cloud-credentials
"""


class ChartCopy:
    """The chart's Chart.yaml and a given values.yaml in a throwaway repository."""

    def __init__(self, values: str):
        self.dir = tempfile.TemporaryDirectory()
        self.root = Path(self.dir.name)
        chart = self.root / chart_readme.CHART
        chart.mkdir(parents=True)
        shutil.copy(REPO / chart_readme.CHART / "Chart.yaml", chart / "Chart.yaml")
        (chart / "values.yaml").write_text(values)

    def __enter__(self):
        return self.root

    def __exit__(self, *_):
        self.dir.cleanup()


class GeneratorTest(unittest.TestCase):
    def test_rows_with_types_defaults_and_comments(self):
        rows = {v.path: v for v in chart_readme.values(VALUES)}
        self.assertEqual(list(rows), ["image.repository", "image.tag", "extraArgs",
                                      "topologySpreadConstraints", "credentialSecrets"])
        self.assertEqual(rows["image.tag"].description, "Default: the chart's appVersion.")
        self.assertEqual(rows["extraArgs"].description, "Extra flags, for example: `- --log-json=false`")
        self.assertEqual(rows["topologySpreadConstraints"].default,
                         "[{maxSkew: 1, topologyKey: kubernetes.io/hostname}]")
        self.assertEqual(rows["credentialSecrets"].default, "[cloud-credentials]")
        self.assertEqual(rows["extraArgs"].kind, "list")

    def test_a_value_without_a_comment_stops_the_generator(self):
        with ChartCopy(VALUES + "replicaCount: 2\n") as root:
            with self.assertRaisesRegex(ValueError, "without a comment in values.yaml: replicaCount"):
                chart_readme.render(root)

    def test_a_changed_value_makes_another_readme(self):
        with ChartCopy(VALUES) as root:
            before = chart_readme.render(root)
        with ChartCopy(VALUES.replace("ghcr.io/x/y", "quay.io/x/y")) as root:
            self.assertNotEqual(before, chart_readme.render(root))
            self.assertIn("| `image.repository` | string | `quay.io/x/y` |", chart_readme.render(root))


class RepositoryTest(unittest.TestCase):
    def test_the_chart_readme_is_generated_from_values_yaml(self):
        committed = (REPO / chart_readme.CHART / "README.md").read_text()
        self.assertEqual(committed, chart_readme.render(REPO),
                         "charts/velero-debug-operator/README.md is not what values.yaml makes; "
                         "run `python3 tests/lint/chart-readme.py`")


if __name__ == "__main__":
    unittest.main()
