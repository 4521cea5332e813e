#!/usr/bin/env python3
"""Writes cli/src/serve/velero_kinds*.json from Velero's own CRDs, so `serve` discovers and
prints Velero's kinds as a live cluster with that Velero does (additionalPrinterColumns).
One file per Velero release (cli/src/serve/kinds.rs lists them): the newest is
velero_kinds.json, older ones velero_kinds_v<major>.<minor>.json.

    velero install --crds-only --dry-run -o yaml | python3 cli/scripts/velero-kinds.py \
        > cli/src/serve/velero_kinds.json
"""
import json
import sys

import yaml

kinds = []
for doc in yaml.safe_load_all(sys.stdin):
    for crd in (doc or {}).get("items") or ([doc] if doc else []):
        spec = crd["spec"]
        for version in spec["versions"]:
            kinds.append({
                "group": spec["group"],
                "version": version["name"],
                "kind": spec["names"]["kind"],
                "plural": spec["names"]["plural"],
                "namespaced": spec["scope"] == "Namespaced",
                "shortNames": spec["names"].get("shortNames", []),
                "columns": [
                    {k: c[k] for k in ("name", "type", "jsonPath", "priority") if k in c}
                    for c in version.get("additionalPrinterColumns", [])
                ],
            })
kinds.sort(key=lambda k: (k["group"], k["version"], k["plural"]))
json.dump(kinds, sys.stdout, indent=1)
sys.stdout.write("\n")
