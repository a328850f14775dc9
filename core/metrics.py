"""Plain names and units of the collection's metrics: the one mapping every page uses.

Metric ids in the database are short paths (``val/c4/loss``, ``zero-shot/lambada_openai/log_ppl``,
``downstream/inet_5shot/error``); people read "C4 validation loss (nats/token)".
:func:`metric_label` turns an id (and its ``metrics.kind``) into a :class:`MetricLabel`.

>>> metric_label("zero-shot/lambada_openai/log_ppl").title
'LAMBADA last-word loss, zero-shot (nats/word)'
>>> metric_label("val/c4/loss", "loss").title
'Validation loss on C4 (nats/token)'
>>> metric_label("downstream/inet_5shot/error", "error").title
'ImageNet 5-shot error (fraction wrong)'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scaleplan.core import units

__all__ = ["MetricLabel", "metric_label"]

# Whole ids whose meaning the pattern rules below would not say well.
_NAMED = {
    "val/loss": ("Validation loss", "nats/token"),
    "train/loss": ("Training loss", "nats/token"),
    "val/log_ppl": ("Validation loss (log-perplexity)", "nats/token"),
    "val/lm/loss": ("Validation loss", "nats/token"),
    "val/nmt/log_ppl": ("Translation validation loss (log-perplexity)", "nats/token"),
    "val/wikitext/log_ppl": ("WikiText validation loss (log word perplexity)", "nats/word"),
    "val/pile/avg/log_ppl": ("Validation loss on the Pile (mean over domains)", "nats/token"),
    "val/slimpajama/avg/log_ppl": ("Validation loss on SlimPajama (mean over domains)", "nats/token"),
    "colpret/downstream/avg17/err": ("Mean error over 17 downstream tasks", "fraction wrong"),
    "colpret/downstream/avg46/err": ("Mean error over 46 downstream tasks", "fraction wrong"),
    "val/perplexity": ("Validation perplexity", "perplexity"),
    "val/wikitext/bpb": ("WikiText validation loss in bits per byte", "bits/byte"),
    "val/pile_r_denoiser/perplexity": ("Validation perplexity on the Pile, R-denoiser objective", "perplexity"),
    "downstream/lambada_openai/log_ppl": ("LAMBADA last-word loss", "nats/word"),
    "downstream/lambada_openai/ppl": ("LAMBADA perplexity", "perplexity"),
    "downstream/mrpc/f1": ("MRPC paraphrase F1 score", "F1, 0 to 1"),
    "downstream/crowspairs/pct_stereotype": ("CrowS-Pairs stereotype preference (0.5 is unbiased)", "fraction"),
    "train/lr": ("Learning rate", "dimensionless"),
    "train/grad_norm": ("Gradient norm", "L2 norm"),
}
_DATASETS = {
    "c4": "C4",
    "c4_val": "C4",
    "c4_en": "C4 (English)",
    "oscar": "OSCAR",
    "pile": "the Pile",
    "pile_cc": "Pile-CC",
    "slimpajama": "SlimPajama",
    "wikitext": "WikiText",
    "openlm": "the OpenLM mix",
    "rpj": "RedPajama",
    "rw": "RefinedWeb",
    "paloma": "Paloma",
    "paloma_c4_en": "Paloma's C4 (English)",
    "paloma_ptb": "Paloma's Penn Treebank",
    "paloma_redpajama": "Paloma's RedPajama",
    "paloma_falcon-refinedweb": "Paloma's Falcon RefinedWeb",
    "paloma_dolma_100_programing_languages": "Paloma's Dolma code (100 programming languages)",
    "val_de-en_100": "German-English translation (100 sentences)",
}
_TASKS = {
    "lambada_openai": "LAMBADA",
    "lambada": "LAMBADA",
    "inet": "ImageNet",
    "c": "CIFAR-100",
    "cal": "Caltech-101",
    "bird": "Birds (CUB)",
    "bigbench_qa": "BIG-bench QA (Wikidata)",
    "bigbench_mult": "BIG-bench data wrangling",
    "bigbench_unit": "BIG-bench unit conversion",
    "bigbench_date": "BIG-bench date understanding",
    "bigbench_ling": "BIG-bench linguistic mappings",
}
_SHOTS = {"zero-shot": "zero-shot", "five-shot": "five-shot"}
_UNITS = {
    "loss": "nats/token",
    "perplexity": "perplexity",
    "accuracy": "fraction correct",
    "error": "fraction wrong",
    "other": "value",
}


@dataclass(frozen=True)
class MetricLabel:
    """A metric in plain words: ``name`` (e.g. "LAMBADA last-word loss, zero-shot") and ``unit``."""

    metric: str  # the database id
    name: str
    unit: str

    @property
    def title(self) -> str:
        """Name and unit, for axis titles and headings: "Validation loss on C4 (nats/token)"."""
        return f"{self.name} ({self.unit})"


def _dataset(key: str) -> str:
    return _DATASETS.get(key, key.replace("_", " "))


def _where(sets: list[str]) -> str:
    """ "C4", or a subset of a set: ["pile", "pile_cc"] -> "Pile-CC (the Pile)"."""
    return _dataset(sets[-1]) + (f" ({', '.join(_dataset(p) for p in sets[:-1])})" if len(sets) > 1 else "")


def _task(key: str) -> str:
    match = re.fullmatch(r"(.+?)_(\d+)shot", key)
    if match:
        return f"{_TASKS.get(match.group(1), match.group(1).replace('_', ' '))} {match.group(2)}-shot"
    return _TASKS.get(key, key.replace("_", " "))


def metric_label(metric: str, kind: str | None = None) -> MetricLabel:
    """The plain name and unit of metric id ``metric`` (``kind``: the ``metrics.kind`` column, if known)."""
    metric = str(metric)
    if metric in _NAMED:
        return MetricLabel(metric, *_NAMED[metric])
    parts = metric.split("/")
    # Pythia's lm-eval results: "<zero|five>-shot/<task>/<measure>".
    if len(parts) == 3 and parts[0] in _SHOTS:
        shots, task, measure = _SHOTS[parts[0]], _task(parts[1]), parts[2]
        if task == "LAMBADA" and measure == "log_ppl":
            return MetricLabel(metric, f"LAMBADA last-word loss, {shots}", "nats/word")
        if measure == "ppl":
            return MetricLabel(metric, f"{task} perplexity, {shots}", "perplexity")
        if measure in ("acc", "acc_norm"):
            extra = " (length-normalised)" if measure == "acc_norm" else ""
            return MetricLabel(metric, f"{task} accuracy{extra}, {shots}", "fraction correct")
        return MetricLabel(metric, f"{task} {measure.replace('_', ' ')}, {shots}", units.metric_unit(kind))
    # Validation losses: "val/<set>[/<subset>]/<loss|log_ppl>".
    if parts[0] == "val" and parts[-1] in ("loss", "log_ppl") and len(parts) >= 3:
        where = _where(parts[1:-1])
        measure = "loss" if parts[-1] == "loss" else "loss (log-perplexity)"
        return MetricLabel(metric, f"Validation {measure} on {where}", "nats/token")
    if parts[0] == "val" and parts[-1] == "ppl" and len(parts) >= 3:
        return MetricLabel(metric, f"Validation perplexity on {_where(parts[1:-1])}", "perplexity")
    if "downstream" in parts and parts[-1].startswith("acc") and len(parts) >= 3:
        extra = " (length-normalised)" if "norm" in parts[-1] else ""
        return MetricLabel(metric, f"{_task(parts[-2])} accuracy{extra}", "fraction correct")
    # The over-training runs' confidence bounds: "colpret/val/<set>/loss_<lower|upper>95".
    if len(parts) == 4 and parts[:2] == ["colpret", "val"] and parts[3] in ("loss_lower95", "loss_upper95"):
        side = "Lower" if parts[3] == "loss_lower95" else "Upper"
        return MetricLabel(metric, f"{side} 95% bound of the validation loss on {_dataset(parts[2])}", "nats/token")
    if parts[0] == "train" and parts[-1] == "loss":
        return MetricLabel(metric, "Training loss", "nats/token")
    # Downstream errors: "[colpret/]downstream/<task>/<error|err>".
    if "downstream" in parts and parts[-1] in ("error", "err") and len(parts) >= 3:
        return MetricLabel(metric, f"{_task(parts[-2])} error", "fraction wrong")
    return MetricLabel(metric, metric, _UNITS.get(kind or "other", "value"))
