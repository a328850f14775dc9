"""The decision brief's PDF layout with the accuracy it now states (no Chromium: the charts are stand-in PNGs)."""

from __future__ import annotations

import dataclasses
import io
import re
import subprocess

from scaleplan.core import brief, scenarios
from tests.core.test_scenarios import BASE, ToyErrorModel, toy_context


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
    pdf.write_bytes(brief.brief_pdf(made).data)
    pages = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout.split("\f")
    first = " ".join(pages[0].split())
    # every recommendation's accuracy, the outcome row and the assumptions down to the last end page one
    for o in outcomes:
        assert o.average_accuracy is not None
        assert f"predicted 17-task average accuracy {o.average_accuracy.predicted_points:.1f} points" in first
    assert scenarios.AVERAGE_ACCURACY_LABEL.split(" (")[0] in first
    assert "Assumptions" in first and "GPU cost model" in first
    assert "Appendix" not in first and "Appendix: numbers to recompute by hand" in pages[1]


def test_a_long_study_runs_table_continues_on_more_slides_inside_the_slide(con):
    from pptx import Presentation
    from pptx.util import Inches

    context = scenarios.load_context(con, BASE, calibration=ToyErrorModel(), calibration_message=None, n_boot=2)
    outcome = scenarios.evaluate("base", BASE, context)
    png = _png()
    made = brief.build_brief(
        scenarios.compare([outcome]), scaleplan_version="t", data_version="v", render=lambda figs: [png] * len(figs)
    )
    runs = tuple(brief.StudyRun(f"s{i}", 1e8 * (i + 1), 2e9, 1, 6 * 1e8 * (i + 1) * 2e9, 10.0, 20.0) for i in range(40))
    deck = Presentation(io.BytesIO(brief.brief_pptx(dataclasses.replace(made, runs=runs))))
    footer_top = Inches(7.0)
    tables, titles = [], []
    for slide in deck.slides:
        for shape in slide.shapes:
            if shape.has_table:
                assert shape.top + shape.height <= min(deck.slide_height, footer_top), slide.shapes[0].text_frame.text
                if shape.table.cell(0, 0).text == "Scenario" and shape.table.cell(0, 1).text == "N (params)":
                    tables.append(shape.table)
                    titles.append(slide.shapes[0].text_frame.text)
    shown = [t.cell(i, 0).text for t in tables for i in range(1, len(t.rows))]
    assert [s for s in shown if not s.endswith(": total")] == [r.scenario for r in runs]  # each once, in order
    assert len(tables) > 1 and titles[0] == "Appendix: the picked study's runs"
    assert all(t.endswith("(continued)") for t in titles[1:])


def _named_brief(con, name: str) -> tuple[scenarios.Comparison, brief.Brief]:
    context = scenarios.load_context(con, BASE, calibration=ToyErrorModel(), calibration_message=None, n_boot=2)
    comparison = scenarios.compare([scenarios.evaluate(name, BASE, context)])
    png = _png()
    made = brief.build_brief(comparison, scaleplan_version="t", data_version="v", render=lambda figs: [png] * len(figs))
    return comparison, made


def _pdf_text(tmp_path, data: bytes) -> str:
    pdf = tmp_path / "brief.pdf"
    pdf.write_bytes(data)
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def test_characters_the_pdf_font_lacks_become_a_visible_placeholder_returned_not_printed(con, tmp_path, capsys):
    assert (brief._FONT_DIR / "DejaVuSans.ttf").exists()  # this path needs the DejaVu font
    comparison, made = _named_brief(con, "模型 base")
    capsys.readouterr()
    made_pdf = brief.brief_pdf(made)
    out, err = capsys.readouterr()
    assert out == "" and err == ""  # core prints nothing: the CLI and the page say it
    lacking = made_pdf.missing
    assert lacking.characters == ("模", "型") and lacking.font == "DejaVu Sans"
    text = _pdf_text(tmp_path, made_pdf.data)
    assert "\u25a1\u25a1 base" in text  # what the PDF shows: two white squares
    assert lacking.drawn_as == "\u25a1" and lacking.warning is not None
    assert "模" in lacking.warning and "'\u25a1'" in lacking.warning and "PowerPoint" in lacking.warning
    assert "missing glyphs" not in err.lower()  # fpdf's own warning is not what the user sees
    # known before the charts are rendered: the same characters from the text alone
    assert brief.pdf_missing_glyphs(comparison, scaleplan_version="t", data_version="v") == lacking
    _, plain = _named_brief(con, "base")
    assert brief.brief_pdf(plain).missing.characters == () and brief.brief_pdf(plain).missing.warning is None


def test_without_dejavu_the_warning_names_the_question_mark_helvetica_draws(con, tmp_path, monkeypatch):
    monkeypatch.setattr(brief, "_FONT_DIR", tmp_path / "no-fonts-here")
    comparison, made = _named_brief(con, "模型 base")
    made_pdf = brief.brief_pdf(made)
    text = _pdf_text(tmp_path, made_pdf.data)
    assert "?? base" in text and "\u25a1" not in text  # Helvetica draws a question mark, not a square
    lacking = made_pdf.missing
    assert lacking.characters == ("模", "型") and lacking.font == "Helvetica"
    assert lacking.drawn_as == "?" and lacking.warning is not None
    assert (
        "'?'" in lacking.warning
        and "\u25a1" not in lacking.warning
        and "DejaVu Sans is not installed" in lacking.warning
    )
    assert brief.pdf_missing_glyphs(comparison, scaleplan_version="t", data_version="v") == lacking


def test_the_frontier_chart_keeps_identical_frontiers_and_close_goals_apart():
    """Review: one scenario's frontier hid another's, 'goal 5%' sat on 'goal 3%', ticks read $1000 next to $10k."""
    context = toy_context()
    same = [scenarios.evaluate(name, BASE, context) for name in ("a", "b")]  # the same inputs: the same frontier
    assert same[0].frontier == same[1].frontier and same[0].frontier
    strict = scenarios.evaluate("c", dataclasses.replace(BASE, accuracy_percent=3), context)
    figure = brief.frontier_figure([*same, strict])
    lines = [t for t in figure.data if t.mode == "lines+markers"]
    assert len({t.line.dash for t in lines}) == len(lines) == 3
    assert len({t.marker.symbol for t in lines}) == 3
    # the first drawn is the widest, so a later one on top of it leaves its edges showing
    widths = [t.line.width for t in lines]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3
    goals = {a.text: a for a in figure.layout.annotations if a.text.startswith("goal")}
    assert set(goals) == {"goal 3%", "goal 5%"}
    assert goals["goal 3%"].x != goals["goal 5%"].x  # at opposite ends of their lines
    ticks = list(figure.layout.xaxis.ticktext)
    costs = [c for t in lines for c in t.x]
    assert ticks and all(re.fullmatch(r"\$\d+(k|M)?", t) for t in ticks), ticks
    assert "$1000" not in ticks and min(figure.layout.xaxis.tickvals) <= min(costs)
    assert max(figure.layout.xaxis.tickvals) >= max(costs)


def test_the_study_runs_table_writes_counts_with_suffixes_not_scientific_notation():
    # review4/5: "2.5e+09" parameters in the appendix. A 2.5-billion-parameter run on 50 billion tokens,
    # 2 seeds: 6 x 2.5e9 x 5e10 = 7.5e20 FLOPs a seed, 1.5e21 for both.
    run = brief.StudyRun("s", 2.5e9, 5e10, 2, 7.5e20, 123_400.0, 246_800.0)
    head, row, total = brief.run_rows([run])
    assert head[1:3] == ["N (params)", "D (tokens)"]
    assert row == ["s", "2.5B", "50B", "2", "7.5e20", "123k", "$247k"]
    assert total == ["s: total", "", "", "", "1.5e21 (all seeds)", "123k", "$247k"]
    assert not any(re.search(r"e[+-]", cell) for cell in row + total)
