"""Source manifest: which public files the collection is built from, and how to get them.

The manifest (``data/manifest.json``) pins every ingested file by repository, commit,
relative path, size in bytes and sha256. Files are read from a local mirror laid out as
``<mirror>/<folder>/<path>`` (the layout of ``../shared/datasets``) or downloaded from
``https://raw.githubusercontent.com/<repository>/<commit>/<path>`` into a download cache
with the same layout, in parallel, resumably, and verified against their checksums.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from scaleplan.core.errors import UserError
from scaleplan.core.settings import DEFAULT_DOWNLOAD_URL as DEFAULT_URL_TEMPLATE

#: The pinned manifest ships as package data of ``scaleplan.data`` (the ``data/`` folder), so it
#: is found the same way in a checkout, an editable install and a wheel.
MANIFEST_PATH = Path(str(importlib.resources.files("scaleplan.data").joinpath("manifest.json")))

#: The three public sources (SOURCES.md), keyed by mirror folder.
REPOSITORIES: dict[str, dict[str, str]] = {
    "colpret": {
        "repository": "IBM/ColPret",
        "commit": "16f23bbe054277ddc4afd07a972dd7cfbe3f48c3",
        "license": "MIT",
        "paper": "Choshen, Zhang, Andreas. A Hitchhiker's Guide to Scaling Law Estimation. ICML 2025",
    },
    "mlfoundations-scaling": {
        "repository": "mlfoundations/scaling",
        "commit": "a003c4913793ac2ae7ef87b28ecb562955d026d5",
        "license": "MIT",
        "paper": "Gadre et al. Language models scale reliably with over-training and on downstream tasks. ICLR 2025",
    },
    "pythia": {
        "repository": "EleutherAI/pythia",
        "commit": "a19eecb807ec2c79a39ebf18108816e6ffffc1d5",
        "license": "Apache-2.0",
        "paper": "Biderman et al. Pythia: A Suite for Analyzing Large Language Models. ICML 2023",
    },
}


class DataSourceError(UserError, RuntimeError):
    """A source file is missing, unreadable or does not match the manifest."""


class ChecksumMismatchError(DataSourceError):
    """A file's sha256 differs from the manifest's."""


@dataclass(frozen=True)
class ManifestFile:
    """One pinned file: ``<folder>/<path>`` in a mirror, ``path`` in ``repository@commit``."""

    folder: str
    path: str
    sha256: str
    bytes: int
    adapter: str

    @property
    def relative(self) -> str:
        return f"{self.folder}/{self.path}"


@dataclass(frozen=True)
class Manifest:
    repositories: dict[str, dict[str, str]]
    files: tuple[ManifestFile, ...]
    digest: str

    def files_of(self, adapter: str) -> list[ManifestFile]:
        return [f for f in self.files if f.adapter == adapter]


def sha256_of(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    """Read the manifest; its digest (sha256 of the file) identifies the data version."""
    raw = path.read_bytes()
    doc = json.loads(raw)
    files = tuple(ManifestFile(**entry) for entry in doc["files"])
    return Manifest(repositories=doc["repositories"], files=files, digest=hashlib.sha256(raw).hexdigest())


def make_manifest(mirror: Path, path: Path = MANIFEST_PATH) -> Manifest:
    """Write the manifest from a mirror: every file matched by an adapter's ``PATTERNS``."""
    from scaleplan.core.sources import adapters

    entries, seen = [], set()
    for module in adapters():
        for pattern in module.PATTERNS:
            for file in sorted(mirror.glob(pattern)):
                if not file.is_file():
                    continue
                relative = file.relative_to(mirror).as_posix()
                if relative in seen:
                    continue
                seen.add(relative)
                folder, inner = relative.split("/", 1)
                entries.append(
                    {
                        "folder": folder,
                        "path": inner,
                        "sha256": sha256_of(file),
                        "bytes": file.stat().st_size,
                        "adapter": module.NAME,
                    }
                )
    doc = {"repositories": REPOSITORIES, "files": entries}
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return load_manifest(path)


def verify_mirror(manifest: Manifest, mirror: Path, adapters: Iterable[str] | None = None) -> None:
    """Check that every manifest file exists in ``mirror`` with the pinned checksum.

    Raises :class:`ChecksumMismatchError` or :class:`DataSourceError` naming the file.
    """
    wanted = set(adapters) if adapters is not None else None
    for entry in manifest.files:
        if wanted is not None and entry.adapter not in wanted:
            continue
        file = mirror / entry.relative
        if not file.is_file():
            raise DataSourceError(f"missing source file {file} (expected by the manifest for '{entry.adapter}')")
        if file.stat().st_size != entry.bytes or sha256_of(file) != entry.sha256:
            raise ChecksumMismatchError(
                f"checksum mismatch for {file}: the manifest pins sha256 {entry.sha256[:12]}... "
                f"({entry.bytes} bytes) at {manifest.repositories[entry.folder]['repository']}@"
                f"{manifest.repositories[entry.folder]['commit'][:10]}; the file on disk differs. "
                "Restore the file or point --mirror at an untouched copy."
            )


def url_for(entry: ManifestFile, manifest: Manifest, template: str | None = None) -> str:
    template = template or DEFAULT_URL_TEMPLATE
    repo = manifest.repositories[entry.folder]
    path = urllib.parse.quote(entry.path)
    return template.format(repository=repo["repository"], commit=repo["commit"], folder=entry.folder, path=path)


def _download_one(
    entry: ManifestFile, url: str, dest: Path, on_bytes: Callable[[int], None], retries: int = 3, timeout: float = 60.0
) -> None:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming a partial file with HTTP Range."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error: Exception | None = None
    for attempt in range(retries):
        offset = part.stat().st_size if part.exists() else 0
        if offset > entry.bytes:
            part.unlink()
            offset = 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if offset and response.status != 206:  # server ignored Range: start over
                    offset = 0
                with open(part, "ab" if offset else "wb") as out:
                    while block := response.read(1 << 16):
                        out.write(block)
                        on_bytes(len(block))
            break
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            if isinstance(error, urllib.error.HTTPError) and error.code == 416:
                break  # the part file is already complete
            last_error = error
            time.sleep(0.5 * (attempt + 1))
    else:
        raise DataSourceError(f"could not download {url}: {last_error}")
    if sha256_of(part) != entry.sha256:
        part.unlink(missing_ok=True)
        raise ChecksumMismatchError(f"checksum mismatch for downloaded {entry.relative} from {url}")
    os.replace(part, dest)


def download(
    manifest: Manifest, dest_root: Path, *, workers: int = 8, progress: bool = True, template: str | None = None
) -> Path:
    """Download every manifest file not already verified in ``dest_root``; return ``dest_root``.

    Parallel (``workers`` threads), resumable (partial files continue with HTTP Range
    requests; finished files are kept), each file sha256-verified before it is used.
    """
    from tqdm.auto import tqdm

    todo = []
    for entry in manifest.files:
        file = dest_root / entry.relative
        if file.is_file() and file.stat().st_size == entry.bytes and sha256_of(file) == entry.sha256:
            continue
        todo.append(entry)
    if not todo:
        return dest_root
    total = sum(e.bytes for e in todo)
    with (
        tqdm(
            total=total, unit="B", unit_scale=True, desc=f"downloading {len(todo)} files", disable=not progress
        ) as bar,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        futures = [
            pool.submit(_download_one, e, url_for(e, manifest, template), dest_root / e.relative, bar.update)
            for e in todo
        ]
        try:
            for future in as_completed(futures):
                future.result()
        except DataSourceError as error:
            # One failure (no network, a bad file) stops the rest: finished files stay for a resume.
            for pending in futures:
                pending.cancel()
            failed = sum(1 for f in futures if not f.cancelled() and f.done() and f.exception() is not None)
            more = f" ({failed} files failed; finished files are kept and a rerun resumes)" if failed > 1 else ""
            raise type(error)(f"{error}{more}") from None
    return dest_root
