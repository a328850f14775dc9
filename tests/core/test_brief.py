"""The decision brief's PDF layout with the accuracy it now states (no Chromium: the charts are stand-in PNGs)."""

from __future__ import annotations

import dataclasses
import io
import subprocess

from scaleplan.core import brief, scenarios
from tests.core.test_scenarios import BASE, ToyErrorModel


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (brief.FIGURE_WIDTH, brief.FIGURE_HEIGHT), "white").save(out, format="PNG")
    return out.getvalue()


def test_page_one_holds_four_scenarios_with_their_accuracy(con, tmp_path):
    lookup = scenarios.average_accuracy_for(con)
    far = dataclasses.replace(BASE, target_params=7e10, target_tokens=1.4e12)
    by_compute = scenarios.PlanInputs(target_flops=5.9e23, budget_dollars=5e4, law="hoffmann2022")
    named = {"70B": far, "7B": BASE, "7B $200k": dataclasses.replace(BASE, budget_dollars=2e5), "C": by_compute}
    context = scenarios.load_context(con, BASE, calibration=ToyErrorModel(), calibration_message=None, n_boot=2)
    assert isinstance(context, scenarios.PlanningContext) and len(context.laws) >= 5  # Gadre et al.'s laws too
    outcomes = [scenarios.evaluate(k, v, context, accuracy=lookup) for k, v in named.items()]
    png = _png()
    made = brief.build_brief(
        scenarios.compare(outcomes), scaleplan_version="t", data_version="v", render=lambda figs: [png] * len(figs)
    )
    pdf = tmp_path / "brief.pdf"
    pdf.write_bytes(brief.brief_pdf(made))
    pages = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout.split("\f")
    first = " ".join(pages[0].split())
    # every recommendation's accuracy, the outcome row and the assumptions down to the last end page one
    for o in outcomes:
        assert o.average_accuracy is not None
        assert f"predicted 17-task average accuracy {o.average_accuracy.predicted_points:.1f} points" in first
    assert scenarios.AVERAGE_ACCURACY_LABEL.split(" (")[0] in first
    assert "Assumptions" in first and "GPU cost model" in first
    assert "Appendix" not in first and "Appendix: numbers to recompute by hand" in pages[1]
