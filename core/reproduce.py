"""Reproductions of the two papers' headline results on the ingested data.

* :func:`overtraining` — Gadre et al.: fit L(C, M) on the small runs of each training set
  (0.011B, 0.079B, 0.154B, 0.411B at M = 20 plus 0.011B at M = 320; C4 eval loss) and
  predict the over-trained 1.4B run (the largest M that exists for that set: 640 on
  RedPajama, 80 on C4, 320 on RefinedWeb) and the 6.9B M = 20 run; then fit
  Err(L) = eps - k exp(-gamma L) on those runs plus the 1.4B M = 20 run and predict the
  targets' 17-task average top-1 error from their *predicted* loss.
* :func:`hitchhiker` — Choshen et al.: from the meta-analysis sweep, the ARE grid over
  model size x fraction of training, and the paper's findings checked on our data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from scaleplan.core import findings as findings_rules  # "findings" names the report's list below
from scaleplan.core import fitting, laws, storage
from scaleplan.core.evaluation import absolute_relative_error
from scaleplan.core.findings import Finding

OVERTRAIN_DATASETS = {"c4": "overtrain-c4", "rpj": "overtrain-rpj", "rw": "overtrain-rw"}
OVERTRAIN_LOSS = "val/c4_val/loss"
OVERTRAIN_ERR17 = "colpret/downstream/avg17/err"
SMALL_SIZES = (0.011e9, 0.079e9, 0.154e9, 0.411e9)


def _overtrain_table(con: duckdb.DuckDBPyConnection, family: str) -> pd.DataFrame:
    """Final C4 loss and 17-task error of every run of an over-training family."""
    pairs = storage.final_metric_pairs(con, family, OVERTRAIN_LOSS, OVERTRAIN_ERR17)
    return pairs.rename(columns={"value": "loss", "paired_value": "err17"})


def _nearest(values: ArrayLike, wanted: float) -> NDArray[np.bool_]:
    close: NDArray[np.bool_] = np.isclose(np.asarray(values, dtype=float), wanted, rtol=SIZE_RTOL)
    return close


SIZE_RTOL = 0.15  # a run "is" the 0.154B run when within 15% (the testbed's sizes are >= 1.9x apart)
GADRE_FAMILY = "overtrain-rpj"  # the planner's reference data set for the over-training law


def gadre_fit_mask(num_params: ArrayLike, multiplier: ArrayLike) -> NDArray[np.bool_]:
    """Gadre et al.'s loss-law fit set: the 0.011B, 0.079B, 0.154B and 0.411B runs at M = 20 plus
    the 0.011B run at M = 320 (M = D / N rounded to an integer; sizes within :data:`SIZE_RTOL`).

    The one definition of the fit set, used by the reproduction and the planner.
    """
    n = np.asarray(num_params, dtype=float)
    m = np.round(np.asarray(multiplier, dtype=float))
    small_m20: NDArray[np.bool_] = np.zeros(n.shape, bool)
    for size in SMALL_SIZES:
        small_m20 |= _nearest(n, size) & (m == 20)
    mask: NDArray[np.bool_] = small_m20 | (_nearest(n, SMALL_SIZES[0]) & (m == 320))
    return mask


def gadre_downstream_mask(num_params: ArrayLike, multiplier: ArrayLike) -> NDArray[np.bool_]:
    """The downstream-law fit set: the loss-law fit set plus the 1.4B run at M = 20."""
    n = np.asarray(num_params, dtype=float)
    m = np.round(np.asarray(multiplier, dtype=float))
    mask: NDArray[np.bool_] = gadre_fit_mask(n, m) | (_nearest(n, 1.4e9) & (m == 20))
    return mask


@dataclass(frozen=True, eq=False)
class GadreLaws:
    """Gadre et al.'s laws fitted as published on one over-training family.

    ``runs``: every run's final point (run_id, num_params, tokens_seen, M, loss, err17, in_fit);
    ``loss_fit``: L(C, M) on the fit set (least squares, grid of starts); ``downstream_fit``:
    Err(L) on the downstream set (None without enough error values); ``bootstrap``: run-bootstrap
    refits of the loss law (None when requested with n_boot = 0 or when it fails).
    """

    family: str
    runs: pd.DataFrame
    loss_fit: fitting.FitResult
    downstream_fit: fitting.FitResult | None
    bootstrap: fitting.BootstrapResult | None

    @property
    def fit_set(self) -> pd.DataFrame:
        return self.runs[self.runs["in_fit"]]

    @property
    def fit_compute(self) -> float:
        return float(laws.compute_from(self.fit_set["num_params"], self.fit_set["tokens_seen"]).sum())

    def held_out(self, min_params: float = 1e9) -> pd.DataFrame:
        """Runs above ``min_params`` (the paper's targets are 1.4B and 6.9B) with predicted and actual loss."""
        big = self.runs[self.runs["num_params"] > min_params]
        predicted = self.loss_fit.predict(laws.compute_from(big["num_params"], big["tokens_seen"]), big["M"])
        return pd.DataFrame(
            {
                "run_id": big["run_id"].to_numpy(),
                "num_params": big["num_params"].to_numpy(),
                "multiplier": big["M"].to_numpy(),
                "actual": big["loss"].to_numpy(),
                "predicted": np.asarray(predicted, dtype=float),
            }
        )


def fit_gadre(
    con: duckdb.DuckDBPyConnection, family: str = GADRE_FAMILY, *, n_boot: int = 0, seed: int = 0
) -> GadreLaws:
    """Fit the over-training law and the downstream law on ``family`` as Gadre et al. did.

    Raises :class:`core.fitting.FitError` when the family lacks the fit set.
    """
    table = _overtrain_table(con, family)
    if table.empty:
        raise fitting.InsufficientDataError(f"the {family} family is not in the database")
    runs = table.sort_values("tokens_seen").groupby("run_id", sort=False).tail(1).copy()
    runs["M"] = np.round(runs["tokens_seen"] / runs["num_params"])
    runs["in_fit"] = gadre_fit_mask(runs["num_params"], runs["M"])
    runs = runs.sort_values(["num_params", "M"], ignore_index=True)
    fit_set = runs[runs["in_fit"]]
    loss_fit = fitting.fit_overtrain(
        laws.compute_from(fit_set["num_params"], fit_set["tokens_seen"]),
        fit_set["M"],
        fit_set["loss"],
        objective="least_squares",
        run_ids=fit_set["run_id"].to_numpy(),
    )
    down_set = runs[gadre_downstream_mask(runs["num_params"], runs["M"])].dropna(subset=["err17"])
    downstream = fitting.fit_downstream(down_set["loss"], down_set["err17"]) if len(down_set) >= 4 else None
    boot = None
    if n_boot > 0:
        try:
            boot = fitting.bootstrap(loss_fit, n_boot=n_boot, seed=seed)
        except fitting.FitError:
            boot = None
    return GadreLaws(family=family, runs=runs, loss_fit=loss_fit, downstream_fit=downstream, bootstrap=boot)


def overtraining(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Rows of (dataset, target, quantity, predicted, actual, rel_error) per Gadre et al."""
    rows: list[dict[str, Any]] = []
    for dataset, family in OVERTRAIN_DATASETS.items():
        gadre = fit_gadre(con, family)
        runs, loss_fit, err_fit = gadre.runs, gadre.loss_fit, gadre.downstream_fit
        n = runs["num_params"].to_numpy()
        big = runs[_nearest(n, 1.4e9)]
        targets = {
            f"1.4B-M{int(big['M'].max())}": big[big["M"] == big["M"].max()].iloc[0],
            "6.9B-M20": runs[_nearest(n, 6.9e9) & (runs["M"] == 20).to_numpy()].iloc[0],
        }
        for name, target in targets.items():
            predicted_loss = float(
                loss_fit.predict(laws.compute_from(target["num_params"], target["tokens_seen"]), target["M"])
            )
            ratio = float(laws.compute_from(target["num_params"], target["tokens_seen"]) / gadre.fit_compute)
            rows.append(
                {
                    "dataset": dataset,
                    "target": name,
                    "quantity": "loss",
                    "predicted": predicted_loss,
                    "actual": float(target["loss"]),
                    "rel_error": float(absolute_relative_error(predicted_loss, target["loss"])),
                    "fit_compute_ratio": ratio,
                }
            )
            if err_fit is None:
                raise fitting.InsufficientDataError(f"the {family} family has too few downstream error values to fit")
            predicted_err = float(err_fit.predict(predicted_loss))
            rows.append(
                {
                    "dataset": dataset,
                    "target": name,
                    "quantity": "avg_err_17",
                    "predicted": predicted_err,
                    "actual": float(target["err17"]),
                    "rel_error": float(absolute_relative_error(predicted_err, target["err17"])),
                    "fit_compute_ratio": ratio,
                }
            )
    return rows


def size_fraction_grid(results: pd.DataFrame, family: str) -> pd.DataFrame:
    """ARE (mean over the target's last 30%) by largest size used x fraction of training.

    Uses windows that start at the family's smallest size (all sizes up to the largest
    used), intermediate checkpoints and the 10B-token cutoff, as in the paper's figures.
    """
    rows = results[
        (results["family"] == family)
        & (results["status"] == "ok")
        & ~results["final_only"]
        & (results["min_tokens"] > 0)
    ]
    if rows.empty:
        return pd.DataFrame()
    rows = rows[np.isclose(rows["min_params_used"], rows["min_params_used"].min())]
    return rows.pivot_table(index="max_params_used", columns="fraction", values="are_mean", aggfunc="mean")


def partial_target(curves: pd.DataFrame, target_share: float = 0.3, min_tokens: float = 10e9) -> dict[str, Any]:
    """Fit on every smaller run plus the target's own checkpoints up to ``target_share`` of its
    tokens; ARE on the target's last 30% (the paper: ~30% of the target predicts its end)."""
    from scaleplan.core.evaluation import evaluate_target
    from scaleplan.core.selection import Selection, select_points, target_of

    target = target_of(curves)
    pool = select_points(curves, Selection(min_tokens=min_tokens))
    own = curves[(curves["run_id"] == target)]
    own = own[(own["tokens_seen"] <= target_share * own["tokens_seen"].max()) & (own["tokens_seen"] > min_tokens)]
    n = np.concatenate([pool.num_params, own["num_params"].to_numpy(float)])
    d = np.concatenate([pool.tokens_seen, own["tokens_seen"].to_numpy(float)])
    y = np.concatenate([pool.loss, own["value"].to_numpy(float)])
    fit = fitting.fit_chinchilla(n, d, y)
    spent = (
        pool.compute_flops + laws.compute_from(own["num_params"], own["tokens_seen"]).max()
        if not own.empty
        else pool.compute_flops
    )
    ev = evaluate_target(fit.predict, curves, target, float(spent))
    return {"are_mean": ev.are_mean, "target_points": int(len(own))}


def borrowed_single_run(curves: pd.DataFrame, donor: pd.DataFrame, min_tokens: float = 10e9) -> dict[str, Any]:
    """One run of a family (its largest below the target) with A and alpha borrowed from a
    donor family's full fit; E, B, beta fitted on the run's checkpoints."""
    from scaleplan.core.analysis import analyse
    from scaleplan.core.selection import Selection

    donor_fit = analyse(donor, Selection(min_tokens=min_tokens)).fit.params
    result = analyse(
        curves,
        Selection(num_runs=1, pick="largest", min_tokens=min_tokens),
        fixed={"A": donor_fit["A"], "alpha": donor_fit["alpha"]},
    )
    if result.evaluation is None:
        raise ValueError("the family's curves name no target run to evaluate the borrowed fit on")
    return {"are_mean": result.evaluation.are_mean}


BORROW_DONORS = {
    "pythia": "pythia-deduped",
    "pythia-deduped": "pythia",
    "overtrain-c4": "overtrain-rpj",
    "overtrain-rpj": "overtrain-rw",
    "overtrain-rw": "overtrain-c4",
    "opt": "pythia",
    "gpt3": "pythia",
}


@dataclass(frozen=True)
class SizeFractionGrid:
    """Mean ARE over the target's last 30% by the largest size used (rows, parameters) x the fraction of
    training used (columns); None where no design of the sweep has that cell."""

    max_params: tuple[float, ...]
    fractions: tuple[float, ...]
    are: tuple[tuple[float | None, ...], ...]


@dataclass(frozen=True)
class HitchhikerReport:
    """Choshen et al.'s grids and findings on our sweep (``scaleplan reproduce hitchhiker``)."""

    grids: dict[str, SizeFractionGrid]  # by family
    findings: tuple[Finding, ...]  # in the order of core.findings.STATEMENTS
    fits_total: int
    fits_ok: int

    def as_dict(self) -> dict[str, Any]:
        """The JSON document: grids (by family: max_params, fractions, are), findings (as rows of the
        findings table) and fits (total, ok)."""
        return {
            "grids": {family: dataclasses.asdict(grid) for family, grid in self.grids.items()},
            "findings": [f.as_dict() for f in self.findings],
            "fits": {"total": self.fits_total, "ok": self.fits_ok},
        }


def hitchhiker_report(results: pd.DataFrame, con: duckdb.DuckDBPyConnection | None = None) -> HitchhikerReport:
    """The size x fraction grids and the paper's findings checked on the sweep results (with ``con``, also
    the findings that need extra fits on the database: :data:`core.findings.DATABASE_FINDINGS`)."""
    ok = results[results["status"] == "ok"]
    grids: dict[str, SizeFractionGrid] = {}
    for family in ("pythia", "pythia-deduped", "opt", "gpt3", "overtrain-rpj"):
        grid = size_fraction_grid(results, family)
        if not grid.empty:
            grids[family] = SizeFractionGrid(
                max_params=tuple(float(v) for v in grid.index),
                fractions=tuple(float(c) for c in grid.columns),
                are=tuple(tuple(None if np.isnan(v) else float(v) for v in row) for row in grid.to_numpy()),
            )
    findings: list[Finding] = []
    ck = findings_rules.paired_comparison(results, "checkpoints")
    findings.append(
        Finding(
            "checkpoints",
            f"final-only could not be fitted at all in {ck.without_failed_share:.0%} of the "
            f"{ck.fitted_with:,} designs that fit with all checkpoints (10B cutoff on; of all {ck.tasks:,} "
            f"designs fitted both ways, {ck.failure_rate_with:.0%} fail with all checkpoints and "
            f"{ck.failure_rate_without:.0%} final only); where both fit on different points: ARE "
            f"{ck.are_with:.1%} with all checkpoints vs {ck.are_without:.1%} final only ({ck.pairs:,} paired "
            f"fits, {ck.families} families with intermediate checkpoints)",
            bool(ck.without_failed_share > findings_rules.FINAL_ONLY_FAIL_SHARE or ck.are_with < ck.are_without),
        )
    )
    cut = findings_rules.paired_comparison(results, "cutoff")
    findings.append(
        Finding(
            "cutoff",
            f"ARE {cut.are_with:.1%} with the cutoff vs {cut.are_without:.1%} without ({cut.pairs:,} paired "
            f"fits on intermediate checkpoints, {cut.families} families; cutoff better in "
            f"{cut.with_better_share:.0%}; of all {cut.tasks:,} designs fitted both ways, "
            f"{cut.failure_rate_with:.0%} fail with the cutoff and {cut.failure_rate_without:.0%} without)",
            bool(cut.are_with < cut.are_without),
        )
    )
    good = ok[~ok["final_only"] & (ok["min_tokens"] > 0)]
    best = good.groupby("family")["are_mean"].quantile(0.1)
    useful = good.groupby("family")["are_mean"].apply(lambda s: (s <= findings_rules.USEFUL_ARE).mean())
    findings.append(
        Finding(
            "floor",
            f"best decile ARE per family: median {best.median():.1%} over {len(best)} families; "
            f"{useful.mean():.0%} of fits (family-averaged) are within {findings_rules.USEFUL_ARE:.0%}",
            bool(findings_rules.FLOOR_ARE_RANGE[0] <= best.median() <= findings_rules.FLOOR_ARE_RANGE[1]),
        )
    )
    binned = with_bins = None
    if not good.empty:
        from scaleplan.core.meta import with_compute_bins

        with_bins = with_compute_bins(good)
        with_bins["many"] = with_bins["num_runs"] >= findings_rules.MANY_RUNS
        binned = with_bins.groupby(["family", "compute_bin", "many"], observed=True)["are_mean"].mean().unstack("many")
        binned = binned.dropna()
    if binned is not None and not binned.empty and True in binned.columns and False in binned.columns:
        many, few = binned[True].groupby("family").mean().mean(), binned[False].groupby("family").mean().mean()
        findings.append(
            Finding(
                "many_small",
                f"at matched compute-share bins: ARE {many:.1%} with >= {findings_rules.MANY_RUNS} runs vs "
                f"{few:.1%} with 3 runs "
                f"({binned.index.get_level_values(0).nunique()} families)",
                bool(many < few),
            )
        )
    if con is not None:
        partial, borrow = [], []
        for family in ("pythia", "pythia-deduped", "opt", "gpt3", "overtrain-c4", "overtrain-rpj", "overtrain-rw"):
            curves = storage.family_curves(con, family)
            if curves.empty:
                continue
            try:
                partial.append(partial_target(curves)["are_mean"])
            except (fitting.FitError, ValueError):
                pass
            try:
                borrow.append(
                    borrowed_single_run(curves, storage.family_curves(con, BORROW_DONORS[family]))["are_mean"]
                )
            except (fitting.FitError, ValueError):
                pass
        if partial:
            findings.append(
                Finding(
                    "partial_target",
                    f"mean ARE {np.mean(partial):.1%} over {len(partial)} families (smaller runs + the target's "
                    "first 30%)",
                    bool(np.mean(partial) <= findings_rules.PARTIAL_TARGET_MAX_ARE),
                )
            )
        if borrow:
            findings.append(
                Finding(
                    "borrow",
                    f"mean ARE {np.mean(borrow):.1%} over {len(borrow)} families (one run + borrowed A, alpha)",
                    bool(np.mean(borrow) <= findings_rules.BORROW_MAX_ARE),
                )
            )
    return HitchhikerReport(grids=grids, findings=tuple(findings), fits_total=int(len(results)), fits_ok=int(len(ok)))
