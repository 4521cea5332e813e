#!/usr/bin/env python3
"""Unpacks an OCI image layout into a root filesystem, as a container runtime would, and
writes the image's config next to it; the image e2e runs the operator from that root.

Usage: oci-unpack.py LAYOUT_DIR ROOT_DIR CONFIG_OUT
Follows index.json to the manifest for this machine's platform, checks every blob's digest,
and extracts the layers in order (numeric owners; whiteouts are refused: our image has one
layer, so one would mean the image is not what image.sh builds)."""
import gzip, hashlib, json, os, platform, shutil, sys, tarfile

layout, root, config_out = sys.argv[1:4]
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def blob(digest):
    algo, hexd = digest.split(":", 1)
    path = os.path.join(layout, "blobs", algo, hexd)
    with open(path, "rb") as f:
        data = f.read()
    if hashlib.new(algo, data).hexdigest() != hexd:
        sys.exit(f"blob {digest} does not match its digest")
    return data


def manifest_of(desc):
    m = json.loads(blob(desc["digest"]))
    if "manifests" in m:  # an index: this platform's entry
        for d in m["manifests"]:
            p = d.get("platform", {})
            if p.get("os", "linux") == "linux" and p.get("architecture", arch) == arch:
                return manifest_of(d)
        sys.exit(f"no linux/{arch} manifest in {desc['digest']}")
    return m


with open(os.path.join(layout, "index.json")) as f:
    index = json.load(f)
manifest = manifest_of(index["manifests"][0])
config = json.loads(blob(manifest["config"]["digest"]))
shutil.rmtree(root, ignore_errors=True)
os.makedirs(root)
for layer in manifest["layers"]:
    data = blob(layer["digest"])
    if layer["mediaType"].endswith("gzip"):
        data = gzip.decompress(data)
    tmp = os.path.join(root, ".layer.tar")
    with open(tmp, "wb") as f:
        f.write(data)
    with tarfile.open(tmp) as tar:
        for member in tar.getmembers():
            if os.path.basename(member.name).startswith(".wh."):
                sys.exit(f"whiteout {member.name} in layer {layer['digest']}")
        tar.extractall(root, numeric_owner=True, filter="tar")
    os.remove(tmp)
with open(config_out, "w") as f:
    json.dump(config, f, indent=2)
print(json.dumps({k: config["config"].get(k) for k in ("Entrypoint", "User", "Env", "WorkingDir")}))
