"""Your runs in AppTest: what the page says about a study too small for approach 2 and for approach 3
on its final losses (4 sizes x 4 checkpoints), and the interval level's choices."""

from __future__ import annotations

import re

from scaleplan.core import calibration


def _chinchilla_runs() -> bytes:
    """4 sizes x 4 checkpoints drawn from Hoffmann et al.'s published law (E 1.69, A 406.4, B 410.7,
    alpha 0.34, beta 0.28), each size trained to 5x its own parameters x 4 in tokens."""
    rows = ["run_name,num_params,tokens_seen,loss"]
    for n in (100e6, 200e6, 400e6, 800e6):
        for k in (1, 2, 3, 4):
            d = 5 * n * k
            loss = 1.69 + 406.4 / n**0.34 + 410.7 / d**0.28
            rows.append(f"chin-{n / 1e6:.0f}m,{n:.0f},{d:.0f},{loss:.6f}")
    return ("\n".join(rows) + "\n").encode()


def _all_text(at) -> str:
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "metric"):
        for e in at.get(kind):
            parts.append(str(getattr(e, "label", "")) + " " + str(e.value) + " " + str(getattr(e, "help", "") or ""))
    return " ".join(parts).replace("\\", "")


def _upload(app_test):
    at = app_test("your_runs.py", timeout=180)
    at.file_uploader[0].set_value(("chin_runs.csv", _chinchilla_runs(), "text/csv")).run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_study_without_its_own_split_says_whose_split_the_table_shows(app_test):
    at = _upload(app_test)
    text = _all_text(at)
    # The table lists the published laws only; the page must not call that "no split" without saying whose.
    assert "published laws only" in text
    info = " ".join(str(e.value) for e in at.info).replace("\\", "")
    assert "No prediction" in info and "your runs' own fits" in info
    # "approach 3" names one fit on this page: every mention says it is the final-loss one.
    for sentence in re.split(r"(?<=[.;:])\s", text):
        if "approach 3" in sentence:
            assert "final loss" in sentence, sentence
    # The page has no tolerance control, so it does not advise widening one.
    assert not any("tolerance" in str(w.label).lower() for w in at.get("number_input") + at.get("slider"))
    assert "widen the tolerance" not in text


def test_the_predicted_loss_names_its_fit_not_approach_3(app_test):
    at = _upload(app_test)
    at.segmented_control(key="your_runs.target_mode").set_value("Model size and tokens").run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    labels = [m.label for m in at.metric if m.label.startswith("Predicted loss")]
    # The 16 checkpoints are all above the default cutoff (10% of the shortest run, 500M -> 50M tokens).
    assert labels == ["Predicted loss (checkpoint fit on 16 points)"], labels


def test_the_interval_level_reads_in_percent_with_the_fit_pages_choices(app_test):
    at = _upload(app_test)
    slider = at.select_slider(key="your_runs.level")
    assert list(slider.options) == [f"{round(100 * v)}%" for v in calibration.LEVELS] == ["50%", "80%", "90%", "95%"]
    assert slider.value == 0.9
