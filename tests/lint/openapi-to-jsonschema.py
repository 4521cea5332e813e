#!/usr/bin/env python3
"""Kubernetes' own OpenAPI v3 documents (api/openapi-spec/v3 of k8s.io/kubernetes) to one
standalone JSON schema per kind and version, named as kubeconform looks them up:
<kind>-<group's first label>-<version>.json (core: <kind>-<version>.json).

Each file is the kind's schema with every definition it reaches under "definitions" (refs
rewritten; recursive types such as JSONSchemaProps stay refs), and is strict: an object with
declared properties rejects any other (additionalProperties false), unless the API server keeps
unknown fields there (x-kubernetes-preserve-unknown-fields). apiVersion and kind are required
and pinned. Descriptions, formats and x-kubernetes-* extensions are dropped: the API server
does not validate formats such as int32 the way a JSON schema validator would.

usage: openapi-to-jsonschema.py <openapi-spec/v3 dir> <output dir>
"""
import glob
import json
import os
import sys

REF_PREFIX = "#/components/schemas/"


def convert(node):
    """One OpenAPI schema node to JSON schema (refs still named by definition)."""
    if isinstance(node, list):
        return [convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("description", "format", "default", "example") or key.startswith("x-"):
            continue
        if key == "$ref":
            out[key] = "#/definitions/" + value[len(REF_PREFIX):]
        elif key == "properties":
            out[key] = {name: convert(prop) for name, prop in value.items()}
        elif key == "additionalProperties" and isinstance(value, bool):
            out[key] = value
        else:
            out[key] = convert(value)
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    # A ref wrapped in allOf with nothing else left (the description went): the ref itself.
    if set(out) == {"allOf"} and len(out["allOf"]) == 1:
        return out["allOf"][0]
    return out


def refs(node, found):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            found.add(ref[len(REF_PREFIX):])
        for value in node.values():
            refs(value, found)
    elif isinstance(node, list):
        for value in node:
            refs(value, found)


def main(spec_dir, out_dir):
    schemas = {}
    for path in sorted(glob.glob(os.path.join(spec_dir, "*.json"))):
        with open(path) as f:
            schemas.update(json.load(f).get("components", {}).get("schemas", {}))
    if not schemas:
        sys.exit(f"no OpenAPI v3 schemas in {spec_dir}")
    os.makedirs(out_dir, exist_ok=True)
    written = 0
    for name, schema in sorted(schemas.items()):
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            group, version, kind = gvk["group"], gvk["version"], gvk["kind"]
            props = schema.get("properties", {})
            if "apiVersion" not in props or "kind" not in props or "metadata" not in props:
                continue  # not an object one applies (WatchEvent, DeleteOptions, ...)
            api_version = f"{group}/{version}" if group else version
            suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
            # Every definition reachable from the kind.
            reached, todo = set(), [name]
            while todo:
                current = todo.pop()
                if current in reached:
                    continue
                reached.add(current)
                found = set()
                refs(schemas[current], found)
                todo.extend(found - reached)
            root = convert(schema)
            root["properties"]["apiVersion"] = {"type": "string", "enum": [api_version]}
            root["properties"]["kind"] = {"type": "string", "enum": [kind]}
            root["required"] = sorted(set(root.get("required", [])) | {"apiVersion", "kind"})
            root["definitions"] = {d: convert(schemas[d]) for d in sorted(reached - {name})}
            root["$schema"] = "http://json-schema.org/draft-07/schema#"
            root["title"] = f"{kind} {api_version} (Kubernetes OpenAPI, strict)"
            with open(os.path.join(out_dir, f"{kind.lower()}{suffix}.json"), "w") as f:
                json.dump(root, f, sort_keys=True, separators=(",", ":"))
            written += 1
    print(f"{written} schemas written to {out_dir}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
