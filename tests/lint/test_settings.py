"""One truth for settings: the operator's flags, the chart and docs/configuration.md agree.

`RepositoryTest` is the check itself (`make lint` runs it); `CheckTest` proves each way it can
fail on a small repository made up for it.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import settings as S  # noqa: E402

PROCESS = '''
pub struct Args {
    /// Namespace of Velero.
    #[arg(long, env = "VELERO_NAMESPACE", default_value = "velero")]
    namespace: String,
    /// Attempts.
    #[arg(long, env = "MAX_ATTEMPTS", default_value_t = 5)]
    max_attempts: i32,
    /// Bytes.
    #[arg(long, env = "MAX_BUNDLE_BYTES", default_value_t = 512 * 1024 * 1024)]
    max_bundle_bytes: u64,
    /// Patterns.
    #[arg(long = "redaction-pattern", env = "REDACTION_PATTERNS", value_delimiter = '\\n')]
    redaction_patterns: Vec<String>,
    /// Identity.
    #[arg(long, env = "POD_NAME")]
    pod_name: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}
'''
HELPERS = '''{{- define "vdo.namespace" -}}
{{- default .Release.Namespace .Values.veleroNamespace -}}
{{- end -}}

{{/* The environment. */}}
{{- define "vdo.env" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: VELERO_NAMESPACE
  value: {{ include "vdo.namespace" . | quote }}
- name: MAX_ATTEMPTS
  value: {{ .Values.collection.maxAttempts | quote }}
- name: MAX_BUNDLE_BYTES
  value: {{ .Values.collection.maxBundleBytes | int64 | quote }}
- name: RUST_LOG
  value: {{ .Values.logging.level | quote }}
{{- with .Values.redaction.extraPatterns }}
# One pattern per line.
- name: REDACTION_PATTERNS
  value: {{ join "\\n" . | quote }}
{{- end }}
{{- end -}}
'''
SCHEMA = {"properties": {
    "veleroNamespace": {"type": "string"},
    "collection": {"properties": {"maxAttempts": {}, "maxBundleBytes": {}}},
    "logging": {"properties": {"level": {}}},
    "redaction": {"properties": {"extraPatterns": {}}},
}}
CONFIGURATION = '''# Configuration

| flag | environment | chart value | default | meaning |
| --- | --- | --- | --- | --- |
| `--namespace` | `VELERO_NAMESPACE` | `veleroNamespace` | `velero` | Velero's namespace |
| `--max-attempts` | `MAX_ATTEMPTS` | `collection.maxAttempts` | `5` | attempts |
| `--max-bundle-bytes` | `MAX_BUNDLE_BYTES` | `collection.maxBundleBytes` | `536870912` | bytes |
| `--redaction-pattern` | `REDACTION_PATTERNS` | `redaction.extraPatterns` | (none) | patterns |
| `--pod-name` | `POD_NAME` | fixed: the pod's name | host name | identity |
| — | `RUST_LOG` | `logging.level` | `info` | the log filter |

After the table.
'''


class CheckTest(unittest.TestCase):
    def check(self, process=PROCESS, helpers=HELPERS, schema=SCHEMA, configuration=CONFIGURATION):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            for path, text in [(S.PROCESS, process), (S.HELPERS, helpers),
                               (S.SCHEMA, json.dumps(schema)), (S.CONFIGURATION, configuration)]:
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_text(text)
            return S.check(root)

    def test_agreeing_sources_pass(self):
        self.assertEqual(self.check(), [])

    def test_a_flag_the_chart_does_not_set_fails(self):
        helpers = HELPERS.replace("- name: MAX_ATTEMPTS\n  value: {{ .Values.collection.maxAttempts | quote }}\n", "")
        found = self.check(helpers=helpers)
        self.assertIn("the chart does not set MAX_ATTEMPTS (flag --max-attempts)", "\n".join(found))

    def test_a_flag_without_a_row_fails(self):
        configuration = re.sub(r"\| `--max-attempts`.*\n", "", CONFIGURATION)
        self.assertEqual(self.check(configuration=configuration),
                         ["docs/configuration.md: no row for flag --max-attempts (MAX_ATTEMPTS)"])

    def test_a_row_for_no_flag_fails(self):
        process = PROCESS.replace('#[arg(long, env = "MAX_ATTEMPTS", default_value_t = 5)]', "")
        found = "\n".join(self.check(process=process))
        self.assertIn("--max-attempts (MAX_ATTEMPTS) is no flag of the operator", found)

    def test_a_row_naming_another_value_fails(self):
        configuration = CONFIGURATION.replace("`collection.maxAttempts` |", "`collection.attempts` |")
        found = "\n".join(self.check(configuration=configuration))
        self.assertIn("MAX_ATTEMPTS is made of chart values ['collection.maxAttempts'], "
                      "the row names ['collection.attempts']", found)

    def test_a_value_the_schema_lacks_fails(self):
        schema = json.loads(json.dumps(SCHEMA))
        del schema["properties"]["collection"]["properties"]["maxAttempts"]
        self.assertIn("MAX_ATTEMPTS is made of `collection.maxAttempts`, which the schema lacks",
                      "\n".join(self.check(schema=schema)))

    def test_a_variable_of_no_flag_and_no_row_fails(self):
        helpers = HELPERS.replace("- name: RUST_LOG", "- name: HTTPS_PROXY\n  value: {{ .Values.proxy | quote }}\n- name: RUST_LOG")
        self.assertIn("the chart sets HTTPS_PROXY, which is no flag and has no row",
                      "\n".join(self.check(helpers=helpers)))

    def test_a_wrong_default_fails(self):
        configuration = CONFIGURATION.replace("| `536870912` |", "| `512 MiB` |")
        self.assertIn("--max-bundle-bytes's default is `536870912`",
                      "\n".join(self.check(configuration=configuration)))

    def test_a_fixed_variable_must_say_so(self):
        configuration = CONFIGURATION.replace("fixed: the pod's name", "the pod's name")
        self.assertIn("the chart sets POD_NAME without a value",
                      "\n".join(self.check(configuration=configuration)))


class RepositoryTest(unittest.TestCase):
    def test_flags_chart_and_docs_agree(self):
        found = S.check(S.REPO)
        self.assertEqual(found, [], "\n" + "\n".join(found))

    def test_the_built_operators_help_agrees_with_the_source_and_the_docs(self):
        """`--help` of a built operator, when there is one (this check builds nothing): the
        flags and variables read from the source, and every default it prints in the docs."""
        target = Path(os.environ.get("CARGO_TARGET_DIR", S.REPO / "target"))
        binary = target / "debug" / "velero-debug-operator"
        if not binary.is_file():
            self.skipTest(f"no operator built at {binary}")
        if binary.stat().st_mtime < (S.REPO / S.PROCESS).stat().st_mtime:
            self.skipTest(f"{binary} is older than {S.PROCESS}")
        help_text = subprocess.run([str(binary), "--help"], capture_output=True, text=True,
                                   check=True, env={"PATH": os.environ.get("PATH", "")}).stdout
        options = help_text.split("Options:", 1)[1]
        entries = re.split(r"\n(?= +-)", options)
        in_help = {}
        for entry in entries:
            flag = re.search(r"(--[a-z0-9-]+)", entry)
            env = re.search(r"\[env: ([A-Z0-9_]+)=", entry)
            if flag and env:
                default = re.search(r"\[default: ([^\]]*)\]", entry)
                in_help[flag[1]] = (env[1], default[1].strip('"') if default else None)
        source = S.flags((S.REPO / S.PROCESS).read_text())
        self.assertEqual({f: env for f, (env, _) in in_help.items()}, {f.name: f.env for f in source})
        rows = {r.flag: r for r in S.rows((S.REPO / S.CONFIGURATION).read_text())}
        for flag, (_, default) in in_help.items():
            if default is None or flag == "--spool-dir":  # the machine's temp dir
                continue
            self.assertIn(S.shown(default), rows[flag].default, f"{flag}: --help says {default!r}")

if __name__ == "__main__":
    unittest.main()
