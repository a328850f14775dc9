"""Reference laws and the compute-optimal allocation under each: the published laws
(:data:`HOFFMANN2022`, :data:`BESIROGLU2024`), laws fitted on the collection (:func:`fitted_law`,
:func:`collection_laws`, :func:`family_law`), N*, D* with intervals from parameter samples
(:func:`optimal_allocation`) and when the laws disagree by more than 2x (:func:`disagreement_warning`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import special
from scipy.stats import qmc

from scaleplan.core import laws
from scaleplan.core.planning.inputs import (
    FLOPS_PER_PARAM_TOKEN,
    MAX_FLOPS,
    PlanningError,
    _as_chinchilla,
    _positive,
)
from scaleplan.core.selection import DEFAULT_MIN_TOKENS
from scaleplan.core.units import format_count

if TYPE_CHECKING:  # core.analysis imports core.planning's neighbours; the type is only named here
    from scaleplan.core.analysis import Analysis

HOFFMANN2022 = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
"""Hoffmann et al. (2022), *Training Compute-Optimal Large Language Models*, approach 3 (eq. 10):
L(N, D) = 1.69 + 406.4 / N^0.34 + 410.7 / D^0.28, as printed in the paper's body."""

BESIROGLU2024 = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
"""Besiroglu, Erdil, Barnett, You (2024), *Chinchilla Scaling: A replication attempt*
(arXiv:2404.10102), their refit of approach 3 on data extracted from Hoffmann et al.'s figure 4
(Huber loss, delta 1e-3, summed; 240 points): E = 1.8172 (printed 1.82 in the abstract's
rounding), A = 482.01, B = 2085.43, alpha = 0.3478, beta = 0.3658."""

BESIROGLU2024_SE = {"E": 0.03, "A": 124.58, "B": 1293.23, "alpha": 0.02, "beta": 0.02}
"""Their standard errors (4,000 bootstrap refits), same table. No covariance is published."""

PUBLISHED_LAWS = ("hoffmann2022", "besiroglu2024")
DEFAULT_LAW = "besiroglu2024"
DEFAULT_LAW_REASON = (
    "The default reference is Besiroglu et al.'s 2024 refit of Chinchilla approach 3: it fits the published "
    "Chinchilla runs better than Hoffmann et al.'s printed parameters (whose optimiser stopped early and whose "
    "values are rounded), agrees with Hoffmann's approaches 1 and 2 (about 20 tokens per parameter), and, "
    "unlike a law fitted on this collection's small runs, was fitted up to 16B parameters."
)
DISAGREEMENT_FACTOR = 2.0
INTERVAL_LEVEL = 0.8
PUBLISHED_INTERVAL_SOURCE = (
    "published parameters; interval from the published standard errors (Besiroglu et al.), treated as "
    "independent (no covariance is published); not a coverage-tested interval (no held-out data)"
)
"""What a published law's interval is. It cannot be tested for coverage here: the runs it was fitted
on are not in the collection."""
N_INTERVAL_SAMPLES = 2**16
"""Parameter samples of a published law: a scrambled Sobol sequence (deterministic for a seed) of 65,536
points, whose 10% and 90% quantiles of N* lie within about 0.3% of their converged values (4,000
pseudo-random draws were off by 4-8%, about 2 Monte Carlo standard errors; measured against 4 million
draws, tests/core/test_planning.py). Drawing them takes about 6 ms, the N* interval at one compute 3 ms."""


@dataclass(frozen=True)
class ReferenceLaw:
    """A law in Chinchilla form with samples of its parameters for intervals.

    ``params``: E, A, B, alpha, beta. ``samples``: array (n, 5) of the same parameters in that
    order, drawn from the law's parameter uncertainty (None: no interval). ``source`` says where
    the law and its uncertainty come from. ``fit_basis``: for a law fitted on runs here
    (:func:`family_law`), its :class:`core.analysis.Analysis`.
    """

    name: str
    label: str
    params: Mapping[str, float]
    source: str
    samples: np.ndarray | None = None
    # A law fitted here on runs: the fit itself, so a target's loss gets the calibrated interval the Fit
    # page gives it (core.scenarios.predicted_loss), not only the bootstrap's parameter uncertainty.
    fit_basis: Analysis | None = None  # the fit (None: a published or Gadre law)


CHINCHILLA_NAMES = ("E", "A", "B", "alpha", "beta")


def published_law(name: str, *, n_samples: int = N_INTERVAL_SAMPLES, seed: int = 0) -> ReferenceLaw:
    """``hoffmann2022`` or ``besiroglu2024`` with parameter samples for an interval.

    Samples (:data:`N_INTERVAL_SAMPLES`, rounded up to a power of two: a scrambled Sobol sequence mapped
    through the normal quantile, so the interval's quantiles converge far faster than with pseudo-random
    draws): E, alpha, beta normal and log A, log B normal, independent, with Besiroglu et al.'s
    standard errors (for A and B as relative errors: 25.8% and 62.0%, so log-normal) around the
    law's point estimate. Hoffmann et al.'s own intervals are implausibly narrow (Besiroglu et
    al.: they would need over 600,000 runs), so both laws use the replication's standard errors,
    which measure approach 3's uncertainty on the same runs. The covariance is not published;
    ignoring it makes the interval wider than a joint one would be (A and alpha, B and beta are
    strongly correlated in such fits).
    """
    if name not in PUBLISHED_LAWS:
        raise PlanningError(f"unknown published law {name!r}; choose from {', '.join(PUBLISHED_LAWS)}")
    params = HOFFMANN2022 if name == "hoffmann2022" else BESIROGLU2024
    if n_samples < 1:
        raise PlanningError(f"a published law needs at least one parameter sample, got {n_samples}")
    points = qmc.Sobol(d=len(CHINCHILLA_NAMES), scramble=True, seed=seed).random_base2(
        max(0, math.ceil(math.log2(n_samples)))
    )
    z = special.ndtri(np.clip(points, 1e-12, 1 - 1e-12))
    draws = np.empty_like(z)
    for i, key in enumerate(CHINCHILLA_NAMES):
        if key in ("A", "B"):
            relative = BESIROGLU2024_SE[key] / BESIROGLU2024[key]
            draws[:, i] = params[key] * np.exp(relative * z[:, i])
        else:
            draws[:, i] = params[key] + BESIROGLU2024_SE[key] * z[:, i]
    draws = draws[(draws[:, 3] > 0) & (draws[:, 4] > 0)]
    label = (
        "Hoffmann et al. 2022 (Chinchilla, approach 3)"
        if name == "hoffmann2022"
        else "Besiroglu et al. 2024 (Chinchilla replication)"
    )
    source = PUBLISHED_INTERVAL_SOURCE
    return ReferenceLaw(name=name, label=label, params=dict(params), source=source, samples=draws)


def fitted_law(
    name: str,
    label: str,
    fit_params: Mapping[str, float],
    samples: np.ndarray | None,
    *,
    overtrain: bool = False,
    source: str = "",
    fit_basis: Analysis | None = None,
) -> ReferenceLaw:
    """A law fitted on the collection, with its run-bootstrap parameter samples.

    ``overtrain`` marks Gadre et al.'s E, a, b, eta (samples in that order), converted to
    Chinchilla form (:func:`core.laws.overtrain_as_chinchilla`). ``fit_basis``: the fit itself, for a
    law fitted on runs (:attr:`ReferenceLaw.fit_basis`).
    """
    if overtrain:
        chin = laws.overtrain_as_chinchilla(**{k: float(fit_params[k]) for k in ("E", "a", "b", "eta")})
        converted = None
        if samples is not None and len(samples):
            s = np.asarray(samples, dtype=float)
            scale = FLOPS_PER_PARAM_TOKEN ** -s[:, 3]
            converted = np.column_stack([s[:, 0], s[:, 1] * scale, s[:, 2] * scale, 2 * s[:, 3], 2 * s[:, 3]])
    else:
        chin = {k: float(fit_params[k]) for k in CHINCHILLA_NAMES}
        converted = None if samples is None or not len(samples) else np.asarray(samples, dtype=float)
    return ReferenceLaw(name=name, label=label, params=chin, source=source, samples=converted, fit_basis=fit_basis)


@dataclass(frozen=True)
class ComputeOptimal:
    """Compute-optimal N and D under one law at compute C, with an interval on N (and D = C / 6N).

    ``num_params_low``/``high`` are the (1 - level)/2 and (1 + level)/2 quantiles of N* over the
    law's parameter samples (equal to N* without samples).
    """

    law: str
    label: str
    compute_flops: float
    num_params: float
    tokens: float
    num_params_low: float
    num_params_high: float
    tokens_low: float
    tokens_high: float
    level: float
    source: str

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.num_params

    @property
    def has_interval(self) -> bool:
        """False when the law has no parameter samples or they do not move N* (nothing to show)."""
        return self.num_params_high > self.num_params_low * (1 + 1e-9)


def optimal_allocation(law: ReferenceLaw, compute_flops: float, *, level: float = INTERVAL_LEVEL) -> ComputeOptimal:
    """N* = G (C/6)^(beta/(alpha+beta)), G = (alpha A / (beta B))^(1/(alpha+beta)), D* = (C/6) / N*.

    The interval applies the same formula to every parameter sample of ``law``.
    """
    C = _positive("the training compute", compute_flops, MAX_FLOPS, unit=" FLOPs")
    chin = _as_chinchilla(law.params)
    n_point, _ = laws.compute_optimal_allocation(C, **chin)
    n_opt = float(n_point)
    d_opt = C / FLOPS_PER_PARAM_TOKEN / n_opt
    low = high = n_opt
    if law.samples is not None and len(law.samples):
        s = np.asarray(law.samples, dtype=float)
        with np.errstate(all="ignore"):
            n_all, _ = laws.compute_optimal_allocation(C, s[:, 0], s[:, 1], s[:, 2], s[:, 3], s[:, 4])  # type: ignore[arg-type]
        n_s = np.asarray(n_all, dtype=float)
        n_s = n_s[np.isfinite(n_s) & (n_s > 0)]
        if len(n_s):
            tail = (1 - level) / 2
            q_low, q_high = np.quantile(n_s, [tail, 1 - tail])
            low, high = min(float(q_low), n_opt), max(float(q_high), n_opt)
    budget = C / FLOPS_PER_PARAM_TOKEN
    return ComputeOptimal(
        law=law.name,
        label=law.label,
        compute_flops=C,
        num_params=n_opt,
        tokens=d_opt,
        num_params_low=low,
        num_params_high=high,
        tokens_low=budget / high,
        tokens_high=budget / low,
        level=level,
        source=law.source,
    )


def compute_optimal_table(
    reference_laws: Sequence[ReferenceLaw], compute_flops: float, *, level: float = INTERVAL_LEVEL
) -> tuple[ComputeOptimal, ...]:
    """:func:`optimal_allocation` for every law (laws that cannot be evaluated are left out)."""
    rows = []
    for law in reference_laws:
        try:
            rows.append(optimal_allocation(law, compute_flops, level=level))
        except PlanningError:
            continue
    return tuple(rows)


def disagreement(rows: Sequence[ComputeOptimal]) -> float:
    """Largest N* over smallest N* among the laws (1.0 with fewer than two)."""
    sizes = [r.num_params for r in rows]
    return max(sizes) / min(sizes) if len(sizes) >= 2 else 1.0


def disagreement_warning(
    rows: Sequence[ComputeOptimal], factor: float = DISAGREEMENT_FACTOR, *, target_from_compute: bool = False
) -> str | None:
    """A sentence when the laws' N* differ by more than ``factor``, else None.

    ``target_from_compute``: the target was given as its compute, so its N and D are the selected law's
    split and the study designs (sized on the target) change with the law; otherwise they do not."""
    ratio = disagreement(rows)
    if ratio <= factor:
        return None
    big = max(rows, key=lambda r: r.num_params)
    small = min(rows, key=lambda r: r.num_params)
    designs = (
        "the study designs above depend on it: the target, given as its compute, takes the selected law's "
        "split of it, so another law changes the target and the designs."
        if target_from_compute
        else "the study designs above do not depend on it (the target's parameters and tokens are given)."
    )
    return (
        f"The laws disagree by {ratio:.1f}x on the compute-optimal model size: {big.law} gives "
        f"{format_count(big.num_params)} parameters, {small.law} {format_count(small.num_params)}. "
        f"Treat the compute-optimal split as uncertain; {designs}"
    )


# ---------------------------------------------------------------------------------------------
# Laws fitted on the collection

GADRE_LAWS = {"gadre-c4": "overtrain-c4", "gadre-rpj": "overtrain-rpj", "gadre-rw": "overtrain-rw"}
"""Gadre et al.'s L(C, M), fitted as published on each of the testbed's data sets."""
FAMILY_LAW_PREFIX = "fit:"
DEFAULT_LAW_BOOT = 30  # run-bootstrap refits per fitted law: ~1 s each for the Gadre laws on 2 busy cores


def collection_laws(
    con: Any,
    *,
    family: str | None = None,
    curves: pd.DataFrame | None = None,
    n_boot: int = DEFAULT_LAW_BOOT,
    seed: int = 0,
) -> tuple[tuple[ReferenceLaw, ...], dict[str, str]]:
    """Laws fitted here: Gadre et al.'s L(C, M) per data set and, with ``family``, that family's
    Chinchilla fit (default protocol: largest run as target, the rest fitted), or the fit of
    ``curves`` (e.g. uploaded runs) named ``fit:<family>``. A collection family drops checkpoints at or
    below the paper's 10B tokens; given ``curves`` (a user's runs, mostly shorter) drop those at or below
    :func:`core.userdata.default_min_tokens`, the cutoff the Fit page and ``fit --runs`` use for them.

    Each comes with ``n_boot`` run-bootstrap refits for its interval. Returns the laws and, by
    name, why a law could not be fitted.
    """
    from scaleplan.core import fitting, reproduce, storage, userdata
    from scaleplan.core.selection import SelectionError

    out, problems = [], {}
    for name, data_set in GADRE_LAWS.items():
        try:
            gadre = reproduce.fit_gadre(con, data_set, n_boot=n_boot, seed=seed)
        except (fitting.FitError, ValueError) as error:
            problems[name] = str(error)
            continue
        fitted_on = f"fitted on {len(gadre.fit_set)} small runs of {data_set}"
        if gadre.bootstrap is not None and gadre.bootstrap.scheme == "runs":
            samples = gadre.bootstrap.param_samples
            source = (
                f"{fitted_on}; interval from {n_boot} run-bootstrap refits, parameter uncertainty only, "
                "not coverage-tested"
            )
        else:
            # Gadre et al.'s fit set has one point per run and fewer runs than a run bootstrap needs, so
            # the bootstrap keeps every run: all its refits equal the fit, a zero-width "interval".
            samples = None
            source = f"{fitted_on}; no interval: one point per run and too few runs to resample"
        out.append(
            fitted_law(
                name,
                f"Gadre et al. L(C, M) fitted on {data_set}",
                gadre.loss_fit.params,
                samples,
                overtrain=True,
                source=source,
            )
        )
    if family is not None:
        name = FAMILY_LAW_PREFIX + family
        try:
            data = curves if curves is not None else storage.family_curves(con, family)
            cutoff = userdata.default_min_tokens(data) if curves is not None else DEFAULT_MIN_TOKENS
            out.append(family_law(data, family, n_boot=n_boot, seed=seed, min_tokens=cutoff))
        except (fitting.FitError, SelectionError, ValueError) as error:
            problems[name] = str(error)
    return tuple(out), problems


FAMILY_LAW_COVERAGE = {"runs": (35, 40, 8), "blocks": (22, 40, 6)}
"""Measured coverage of :func:`family_law`'s N* interval at :data:`INTERVAL_LEVEL`, by bootstrap scheme:
(intervals containing the true N*, synthetic families, sizes per family). Families drawn from a known
Chinchilla law with 1% seed noise per run and 0.3% per checkpoint, N* at 5.76e23 FLOPs
(tests/core/test_planning_coverage.py checks that these figures hold). The block bootstrap (fewer than
6 fitted sizes) keeps every run's seed noise fixed, so it under-covers."""


def family_law_coverage_text(scheme: str) -> str:
    """The measured coverage of a family law's interval, as shown next to it."""
    if scheme not in FAMILY_LAW_COVERAGE:
        return "coverage not measured"
    covered, total, sizes = FAMILY_LAW_COVERAGE[scheme]
    return (
        f"coverage {covered / total:.0%} measured at nominal {INTERVAL_LEVEL:.0%} "
        f"({covered} of {total} synthetic {sizes}-size families)"
    )


def family_law(
    curves: pd.DataFrame,
    family: str,
    *,
    n_boot: int = DEFAULT_LAW_BOOT,
    seed: int = 0,
    min_tokens: float = DEFAULT_MIN_TOKENS,
) -> ReferenceLaw:
    """The Chinchilla law fitted on one family's ``curves`` (columns run_id, num_params, tokens_seen,
    value), named ``fit:<family>``, with ``n_boot`` bootstrap refits for its interval.

    Default protocol of :func:`core.analysis.analyse`: the largest run is held out as the target,
    every other checkpoint above ``min_tokens`` (tokens) is fitted. Raises :class:`core.fitting.FitError` or
    :class:`core.selection.SelectionError` when the family cannot be fitted.
    """
    from scaleplan.core.analysis import analyse
    from scaleplan.core.selection import Selection

    result = analyse(curves, Selection(min_tokens=min_tokens), n_boot=n_boot, seed=seed, check_identifiability=False)
    if result.bootstrap is None:
        return fitted_law(
            FAMILY_LAW_PREFIX + family,
            f"Chinchilla law fitted on {family}",
            result.fit.params,
            None,
            source=f"fitted on {family} (all runs but the largest); no interval",
            fit_basis=result,
        )
    samples = result.bootstrap.param_samples
    scheme = (
        "run-bootstrap"
        if result.bootstrap.scheme == "runs"
        else "block-bootstrap (checkpoints resampled within each run, so run-to-run noise is left out)"
    )
    return fitted_law(
        FAMILY_LAW_PREFIX + family,
        f"Chinchilla law fitted on {family}",
        result.fit.params,
        samples,
        source=f"fitted on {family} (all runs but the largest); interval from {n_boot} "
        f"{scheme} refits, parameter uncertainty only; "
        f"{family_law_coverage_text(result.bootstrap.scheme)}",
        fit_basis=result,
    )


def all_laws(collection: Sequence[ReferenceLaw] = ()) -> tuple[ReferenceLaw, ...]:
    """The published laws followed by the collection's."""
    return tuple(published_law(n) for n in PUBLISHED_LAWS) + tuple(collection)
