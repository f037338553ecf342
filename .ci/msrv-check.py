#!/usr/bin/env python3
"""The MSRV check CI can run with the one toolchain it has (no other can be
fetched): every locked dependency must declare a rust-version no newer than
ours, and clippy's `incompatible_msrv` lint (run by `cargo clippy`) flags std
APIs newer than it. Language features are the remaining gap; the let-chains
in server/src are why the workspace says 1.88."""
import json
import subprocess
import sys
import tomllib


def version(text):
    return tuple(int(part) for part in text.split("."))


with open("Cargo.toml", "rb") as f:
    msrv = tomllib.load(f)["workspace"]["package"]["rust-version"]
meta = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--locked"]))
newer = sorted(
    f"{p['name']} {p['version']} needs {p['rust_version']}"
    for p in meta["packages"]
    if p.get("rust_version") and version(p["rust_version"]) > version(msrv)
)
if newer:
    sys.exit(f"dependencies newer than rust-version {msrv}:\n  " + "\n  ".join(newer))
print(f"rust-version {msrv}: {len(meta['packages'])} packages, none needs a newer Rust")
