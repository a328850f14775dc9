"""Source adapters: one module per public source of the collection.

Each adapter module defines

``NAME``
    short name used in the summary (e.g. ``"olmo"``);
``VERSION``
    an integer bumped whenever what ``read`` yields changes; with the manifest's file digests it
    makes the data version (:func:`scaleplan.core.storage.data_version`), so an edit that changes
    no output (a docstring, a refactor) leaves every database and the shipped results current;
``REPOSITORY``
    the mirror folder it reads from (``"colpret"``, ``"pythia"`` or ``"mlfoundations-scaling"``);
``PATTERNS``
    glob patterns, relative to the mirror root and starting with the folder, of every
    file it reads (e.g. ``("colpret/aggregated_eval/olmo.csv", "colpret/raw_data/OLMO/**/*.csv")``);
    the manifest lists exactly the files these match;
``read(mirror: pathlib.Path) -> SourceFrames``
    reads those files below ``mirror`` and returns validated frames.

Two adapters may describe the same run (same ``run_id``); the build keeps the first
description and merges the observations.
"""

from __future__ import annotations

import importlib
from types import ModuleType

ADAPTER_MODULES = (
    "pythia",
    "overtrain",
    "overtrain_downstreams",
    "datablations",
    "t5_pile",
    "olmo",
    "llm360",
    "mamba",
    "opt",
    "revisiting",
    "moe",
    "gpt3",
    "chinchilla",
    "bimix",
    "redpajama",
    "gzip",
)


def adapters() -> list[ModuleType]:
    """Import and return every adapter module, in build order."""
    return [importlib.import_module(f"scaleplan.core.sources.{name}") for name in ADAPTER_MODULES]
