"""The manifest pins every ingested file; download and mirror paths verify checksums."""

from __future__ import annotations

import dataclasses
import re

import pytest

from scaleplan.core import manifest as mf
from scaleplan.core.sources import adapters
from tests.helpers import replace_with_copy, serve_directory, symlink_mirror


def test_manifest_covers_every_adapter_and_matches_the_mirror(mirror):
    manifest = mf.load_manifest()
    names = {module.NAME for module in adapters()}
    assert names == {entry.adapter for entry in manifest.files}
    assert set(manifest.repositories) == {"colpret", "mlfoundations-scaling", "pythia"}
    for repo in manifest.repositories.values():
        assert len(repo["commit"]) == 40 and repo["license"] in {"MIT", "Apache-2.0"}
    mf.verify_mirror(manifest, mirror)  # raises on any difference


def _sample_manifest(manifest: mf.Manifest) -> mf.Manifest:
    """A few files from each repository, including a path with spaces."""
    picked = []
    for folder in manifest.repositories:
        picked += [f for f in manifest.files if f.folder == folder][:3]
    picked += [f for f in manifest.files if " " in f.path][:1]
    return dataclasses.replace(manifest, files=tuple(picked))


def test_download_from_local_http_server_verifies_every_file(mirror, tmp_path):
    sample = _sample_manifest(mf.load_manifest())
    with serve_directory(mirror) as base:
        root = mf.download(sample, tmp_path / "dl", progress=False, template=base + "/{folder}/{path}")
    for entry in sample.files:
        assert mf.sha256_of(root / entry.relative) == entry.sha256
    assert not list((tmp_path / "dl").rglob("*.part"))


def test_download_resumes_a_partial_file_with_a_range_request(mirror, tmp_path):
    manifest = mf.load_manifest()
    entry = max(manifest.files, key=lambda f: f.bytes)
    one = dataclasses.replace(manifest, files=(entry,))
    dest = tmp_path / "dl" / entry.relative
    dest.parent.mkdir(parents=True)
    half = (mirror / entry.relative).read_bytes()[: entry.bytes // 2]
    dest.with_name(dest.name + ".part").write_bytes(half)
    from tests.helpers import RangeRequestHandler

    with serve_directory(mirror) as base:
        mf.download(one, tmp_path / "dl", progress=False, template=base + "/{folder}/{path}")
        seen = list(RangeRequestHandler.requests_seen)
    assert mf.sha256_of(dest) == entry.sha256
    assert seen and seen[0][1] == f"bytes={len(half)}-"


def test_download_rejects_a_file_whose_checksum_differs(mirror, tmp_path):
    manifest = mf.load_manifest()
    entry = manifest.files[0]
    served = symlink_mirror(mirror, tmp_path / "served")
    tampered = replace_with_copy(served / entry.relative)
    tampered.write_bytes(tampered.read_bytes() + b"\ntampered")
    one = dataclasses.replace(manifest, files=(entry,))
    with serve_directory(served) as base, pytest.raises(mf.ChecksumMismatchError, match=re.escape(entry.relative)):
        mf.download(one, tmp_path / "dl", progress=False, template=base + "/{folder}/{path}")
    assert not (tmp_path / "dl" / entry.relative).exists()


def test_download_reports_a_missing_file(tmp_path):
    manifest = mf.load_manifest()
    one = dataclasses.replace(manifest, files=(manifest.files[0],))
    (tmp_path / "empty").mkdir()
    with serve_directory(tmp_path / "empty") as base, pytest.raises(mf.DataSourceError, match="could not download"):
        mf.download(one, tmp_path / "dl", progress=False, template=base + "/{folder}/{path}")


def test_mirror_checksum_mismatch_names_the_file(mirror, tmp_path):
    manifest = mf.load_manifest()
    copy = symlink_mirror(mirror, tmp_path / "mirror")
    entry = manifest.files[len(manifest.files) // 2]
    changed = replace_with_copy(copy / entry.relative)
    changed.write_bytes(changed.read_bytes()[:-10])
    with pytest.raises(mf.ChecksumMismatchError, match=re.escape(entry.path.split("/")[-1])):
        mf.verify_mirror(manifest, copy)
