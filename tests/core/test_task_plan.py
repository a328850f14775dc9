"""core.task_prediction for the planner: a hypothetical target's accuracy on a task and on the 17-task
average, on a synthetic over-training testbed drawn from known laws (the truth written out here)."""

from __future__ import annotations

import math

import duckdb
import pytest

from scaleplan.core import storage, task_prediction

# Known laws, written out independently of core.laws: L(C, M) = E + (a M^eta + b M^-eta) C^-eta (nats/token),
# Err(L) = eps - k exp(-gamma L), and a task acc(L) = c + (1 - c) / (1 + exp(-k (L0 - L))).
E, A, B, ETA = 1.8, 450.0, 450.0, 0.15
EPS, K_ERR, GAMMA = 0.85, 2.2, 0.7
CHANCE, K_TASK, L0 = 0.25, 3.0, 3.3
QUESTIONS = 1e7  # noise-free in effect: the binomial error is 1e-4 or less
SIZES = (0.011e9, 0.079e9, 0.154e9, 0.411e9, 1.4e9)
MULTIPLIERS = (20, 40, 80, 320)
LOSS = "val/c4_val/loss"
ERR = "colpret/downstream/avg17/err"


def _loss(n, d):
    c, m = 6 * n * d, d / n
    return E + (A * m**ETA + B * m**-ETA) * c**-ETA


def _err(loss):
    return EPS - K_ERR * math.exp(-GAMMA * loss)


def _acc(loss):
    return CHANCE + (1 - CHANCE) / (1 + math.exp(-K_TASK * (L0 - loss)))


@pytest.fixture()
def testbed():
    con = duckdb.connect(":memory:")
    con.execute(storage.SCHEMA_SQL + storage.DOWNSTREAM_SQL)
    runs, obs, evals = [], [], []
    for data_set in ("c4", "rpj", "rw"):
        family = f"overtrain-{data_set}"
        con.execute(
            "INSERT INTO families VALUES (?, 'overtrain', ?, '', 'decoder', 'web', ?)",
            [family, LOSS, len(SIZES) * len(MULTIPLIERS)],
        )
        for n in SIZES:
            for m in MULTIPLIERS:
                run, d = f"{family}/{n:.3g}-{m}", n * m
                loss = _loss(n, d)
                runs.append((run, "overtrain", family, "decoder", n))
                obs += [(family, run, LOSS, d, 6 * n * d, loss), (family, run, ERR, d, 6 * n * d, _err(loss))]
                evals.append(("overtrain", family, run, d, 6 * n * d, "synth", "acc", 0, CHANCE, QUESTIONS, _acc(loss)))
                evals.append(("overtrain", family, run, d, 6 * n * d, "flat", "acc", 0, CHANCE, QUESTIONS, CHANCE))
    con.executemany("INSERT INTO runs (run_id, source, family, architecture, num_params) VALUES (?, ?, ?, ?, ?)", runs)
    con.executemany(
        "INSERT INTO observations (family, run_id, metric, tokens_seen, flops, value, source) "
        "VALUES (?, ?, ?, ?, ?, ?, 'overtrain')",
        obs,
    )
    con.executemany("INSERT INTO downstream_evals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", evals)
    yield con
    con.close()


def test_the_17_task_average_of_a_hypothetical_target_is_the_known_laws(testbed):
    n, d = 3e9, 60e9
    got = task_prediction.target_average_accuracy(testbed, n, d, "besiroglu2024")
    assert not got.refused and got.family == "overtrain-rpj"
    assert got.predicted_loss == pytest.approx(_loss(n, d), rel=1e-4)
    assert got.predicted_points == pytest.approx(100 * (1 - _err(_loss(n, d))), abs=0.05)
    # noise-free held-out runs: every held-out error is ~0, so the interval collapses onto the point
    assert got.lower_points is not None and got.upper_points is not None
    assert got.upper_points - got.lower_points < 0.1
    assert (
        "90% interval" in got.sentence
        and "not held out by source group" in got.sentence
        and "x beyond" not in got.sentence
    )
    doc = got.as_dict()
    assert doc["interval_90"] == [got.lower_points, got.upper_points] and doc["refused"] is False


def test_a_target_beyond_the_held_out_runs_says_its_coverage_is_not_measured(testbed):
    # the synthetic held-out runs reach the 1.4B M = 320 run: 6 * 1.4e9 * 448e9 = 3.8e21 FLOPs
    got = task_prediction.target_average_accuracy(testbed, 100e9, 2e12, "besiroglu2024")
    assert got.predicted_points == pytest.approx(100 * (1 - _err(_loss(100e9, 2e12))), abs=0.05)
    ratio = 6 * 100e9 * 2e12 / (6 * 1.4e9 * 1.4e9 * 320)
    assert f"{float(f'{ratio:.3g}'):,g}x beyond, where the coverage is not measured" in got.sentence  # 3 digits


def test_a_borrowed_gadre_law_takes_its_own_data_set(testbed):
    got = task_prediction.target_average_accuracy(testbed, 3e9, 60e9, "gadre-c4")
    assert got.family == "overtrain-c4" and "gadre-c4 is fitted on it" in got.source


def test_a_task_of_a_hypothetical_target_is_the_known_link_at_the_known_loss(testbed, monkeypatch):
    monkeypatch.setattr(task_prediction, "held_out_quantile", lambda con, family, level: (1.645, "synthetic q"))
    n, d = 3e9, 60e9
    got = task_prediction.target_task_accuracy(testbed, "synth", n, d, "besiroglu2024")
    assert not got.refused and got.family == "overtrain-rpj"
    assert got.predicted_points == pytest.approx(100 * _acc(_loss(n, d)), abs=0.05)
    assert got.lower_points < got.predicted_points < got.upper_points
    # the half-width is q s, s = sqrt(se_link^2 + p (1 - p) / n) >= the question sampling alone
    p = _acc(_loss(n, d))
    assert got.upper_points - got.predicted_points >= 1.645 * 100 * math.sqrt(p * (1 - p) / QUESTIONS) - 1e-9
    doc = got.as_dict()
    assert doc["name"] == "synth" and "6 overtrain-rpj runs" in doc["fitted_on"]


def test_a_task_at_chance_is_refused_with_its_reason(testbed):
    got = task_prediction.target_task_accuracy(testbed, "flat", 3e9, 60e9, "besiroglu2024")
    assert got.refused and got.reason == "at_chance" and got.predicted_points is None
    assert "sit at chance" in got.message
    assert "No prediction" in got.sentence and got.as_dict()["interval_90"] is None


def test_an_unknown_task_is_not_found(testbed):
    with pytest.raises(task_prediction.TaskNotFound, match="no collection family"):
        task_prediction.target_task_accuracy(testbed, "nosuchtask", 3e9, 60e9, "besiroglu2024")
    with pytest.raises(task_prediction.TaskNotFound, match="did you mean synth"):  # a typo gets its task
        task_prediction.target_task_accuracy(testbed, "snyth", 3e9, 60e9, "besiroglu2024")


def test_the_holdout_quantiles_by_hand():
    """Each data set's half-width is the ceil((m + 1) 0.9)-th smallest of the other data sets' m errors."""
    errors = {"a": tuple(float(i) for i in range(1, 11)), "b": (0.5, 20.0), "c": ()}
    quantiles, covered, total = task_prediction.holdout_quantiles(errors, 0.9)
    # a: the 12 errors of b and c -> only 2 (b), m + 1 = 3, rank 3 > 2: no quantile
    assert quantiles["a"] == math.inf
    # b: the 10 errors of a, rank ceil(11 * 0.9) = 10 -> 10.0; c: all 12, rank ceil(13 * 0.9) = 12 -> 20.0
    assert quantiles["b"] == 10.0 and quantiles["c"] == 20.0
    # covered: all of a (q inf), b's 0.5 (<= 10) but not 20.0
    assert (covered, total) == (11, 12)


def test_a_task_scored_with_several_shot_counts_names_them_in_words(testbed):
    rows = testbed.execute("SELECT * FROM downstream_evals WHERE task = 'synth' AND family = 'overtrain-c4'").fetchall()
    shots_column = [c[0] for c in testbed.description].index("shots")
    testbed.executemany(
        "INSERT INTO downstream_evals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [tuple(5 if i == shots_column else v for i, v in enumerate(row)) for row in rows],
    )
    with pytest.raises(task_prediction.TaskNotFound) as error:
        task_prediction.predict_task(testbed, "overtrain-c4", "synth", [], [], [], 3.0)
    assert "scores it with 0 and 5 shots; name one: zero-shot/synth or five-shot/synth" in str(error.value)
