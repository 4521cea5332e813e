#!/usr/bin/env python3
"""Writes a one-layer OCI image archive that `ctr images import` takes, from files on this
machine: the real node's images are made here, never pulled.

Usage: oci-image.py OUT.tar NAME [--file IMAGE_PATH=HOST_PATH] [--link IMAGE_PATH=TARGET]
         [--dir IMAGE_PATH] [--text IMAGE_PATH=LINE] [--env K=V] --entrypoint ARG [ARG ...]
(--file copies with its mode; /tmp is made 1777, other folders 0755; --text writes LINE and a
newline, and may repeat a path to add lines.)
The layer is deterministic (sorted entries, owner 0, mtime 0), so one input gives one digest.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile


def add(tar, info, data=None):
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def parents(path):
    parts = path.strip("/").split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def layer(spec):
    entries = {}
    for d in spec.get("dirs", []):
        entries[d.strip("/")] = ("dir", 0o1777 if d.strip("/") == "tmp" else 0o755)
    for dest, src in spec.get("files", {}).items():
        with open(src, "rb") as f:
            data = f.read()
        entries[dest.strip("/")] = ("file", os.stat(src).st_mode & 0o7777, data)
    for dest, text in spec.get("text", {}).items():
        entries[dest.strip("/")] = ("file", 0o644, text.encode())
    for dest, target in spec.get("symlinks", {}).items():
        entries[dest.strip("/")] = ("link", target)
    for path in list(entries):
        for p in parents(path):
            entries.setdefault(p, ("dir", 0o755))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(entries):
            kind = entries[path]
            info = tarfile.TarInfo(path)
            if kind[0] == "dir":
                info.type, info.mode = tarfile.DIRTYPE, kind[1]
                add(tar, info)
            elif kind[0] == "link":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, kind[1], 0o777
                add(tar, info)
            else:
                info.mode, info.size = kind[1], len(kind[2])
                add(tar, info, kind[2])
    return raw.getvalue()


def blob(tar, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo("blobs/sha256/" + digest.split(":", 1)[1])
    info.size = len(data)
    add(tar, info, data)
    return digest


def pairs(values):
    return dict(v.split("=", 1) for v in values or [])


def parse():
    p = argparse.ArgumentParser(description="a one-layer OCI image archive for ctr images import")
    p.add_argument("out")
    p.add_argument("name")
    p.add_argument("--file", action="append")
    p.add_argument("--link", action="append")
    p.add_argument("--dir", action="append")
    p.add_argument("--text", action="append")
    p.add_argument("--env", action="append")
    p.add_argument("--entrypoint", nargs="+", required=True)
    a = p.parse_args()
    text = {}
    for dest, line in (v.split("=", 1) for v in a.text or []):
        text[dest] = text.get(dest, "") + line + "\n"
    spec = {"files": pairs(a.file), "symlinks": pairs(a.link), "dirs": a.dir or [], "text": text,
            "entrypoint": a.entrypoint,
            "env": ["PATH=/usr/local/bin:/usr/bin:/bin"] + (a.env or [])}
    return a.out, a.name, spec


def main():
    out, name, spec = parse()
    diff = layer(spec)
    gz = gzip.compress(diff, mtime=0)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": spec.get("entrypoint"),
            "Env": spec["env"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(diff).hexdigest()]},
    }
    with tarfile.open(out, "w") as tar:
        for d in ["blobs", "blobs/sha256"]:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            add(tar, info)
        layer_digest = blob(tar, gz)
        config_bytes = json.dumps(config, sort_keys=True).encode()
        config_digest = blob(tar, config_bytes)
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": len(config_bytes)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest, "size": len(gz)}],
        }, sort_keys=True).encode()
        manifest_digest = blob(tar, manifest)
        index = json.dumps({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest, "size": len(manifest),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"io.containerd.image.name": name,
                                "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]},
            }],
        }, sort_keys=True).encode()
        info = tarfile.TarInfo("index.json")
        info.size = len(index)
        add(tar, info, index)
        layout = b'{"imageLayoutVersion":"1.0.0"}'
        info = tarfile.TarInfo("oci-layout")
        info.size = len(layout)
        add(tar, info, layout)
    print(manifest_digest)


if __name__ == "__main__":
    main()
