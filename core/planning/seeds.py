"""Seeds: what the collection says extra seeds buy (:func:`seed_evidence`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

SEEDS_NOTE = (
    "Extra seeds multiply the cost; the collection holds no multi-seed family to measure what they buy, so the "
    "expected ARE is the 1-seed value (scaleplan reproduce calibration --json, seeds)."
)
"""Said next to runs with more than one seed (see :func:`seed_evidence`)."""


@dataclass(frozen=True)
class SeedEvidence:
    """What the collection says about extra seeds.

    ``families`` / ``groups``: multi-seed families (two or more runs of one size, tokens, architecture
    and data with distinct seeds) and their source groups; ``replicated_runs``: such (family, size,
    tokens) cells. ``measured`` is False when there is nothing to measure on; then ``gain`` is
    None and extra seeds keep the 1-seed expected ARE. ``gain`` maps a seed count (2, 3) to the
    ratio of held-out ARE with that many seeds to ARE with one.
    """

    families: int
    groups: int
    replicated_runs: int
    measured: bool
    gain: Mapping[int, float] | None
    statement: str

    def as_dict(self) -> dict[str, object]:
        return {
            "multi_seed_families": self.families,
            "source_groups": self.groups,
            "replicated_runs": self.replicated_runs,
            "measured": self.measured,
            "are_ratio_by_seeds": None if self.gain is None else {str(k): v for k, v in self.gain.items()},
            "expected_are_2_seeds": "same as 1 seed" if not self.measured else "scaled by are_ratio_by_seeds",
            "expected_are_3_seeds": "same as 1 seed" if not self.measured else "scaled by are_ratio_by_seeds",
            "statement": self.statement,
        }


def seed_evidence(replicates: pd.DataFrame, num_families: int) -> SeedEvidence:
    """:class:`SeedEvidence` from :func:`core.storage.seed_replicates` (columns family, source, runs, seeds)
    over a collection of ``num_families`` families.

    A gain would be measured by fitting each multi-seed family's ladder with 1, 2 and 3 seeds per size
    (seed losses averaged) and comparing the held-out ARE on its largest run, leaving whole source
    groups out. With no multi-seed family there is nothing to fit, and the statement says so."""
    families = int(replicates["family"].nunique()) if len(replicates) else 0
    groups = int(replicates["source"].nunique()) if len(replicates) else 0
    if families < 2 or groups < 2:
        found = (
            "no family of the collection repeats a run with a second seed"
            if families == 0
            else f"only {families} multi-seed famil{'y' if families == 1 else 'ies'} in {groups} source group"
            + ("" if groups == 1 else "s")
        )
        return SeedEvidence(
            families=families,
            groups=groups,
            replicated_runs=int(len(replicates)),
            measured=False,
            gain=None,
            statement=(
                f"No seed gain measured: {found} (of {num_families} families), too few to measure held out by "
                "source group. Expected ARE with 2 or 3 seeds is the 1-seed value, and the planner does not offer "
                "extra seeds as an improvement; they multiply the cost."
            ),
        )
    return SeedEvidence(  # pragma: no cover - the collection has no multi-seed family yet
        families=families,
        groups=groups,
        replicated_runs=int(len(replicates)),
        measured=False,
        gain=None,
        statement=(
            f"{families} multi-seed families in {groups} source groups; the held-out seed fit is not implemented, "
            "so expected ARE with 2 or 3 seeds is the 1-seed value."
        ),
    )
