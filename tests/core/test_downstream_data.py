"""The downstream_evals table: benchmark scores tied to run and checkpoint, with shots, chance, questions."""

from __future__ import annotations

import duckdb
import pytest

from scaleplan.core import meta, storage
from scaleplan.core.sources import adapters


def test_overtrain_scores_carry_the_metadata_of_their_task(con):
    rows = con.execute(
        "SELECT count(*), count(DISTINCT run_id), count(DISTINCT task) FROM downstream_evals WHERE source = 'overtrain'"
    ).fetchone()
    assert rows == (104 * 46, 104, 46)  # 46 tasks of each of the 104 runs
    mmlu = con.execute(
        "SELECT DISTINCT shots, chance, n_questions FROM downstream_evals "
        "WHERE source = 'overtrain' AND task = 'mmlu_zeroshot'"
    ).fetchall()
    assert mmlu == [(0, 0.25, 14042.0)]  # MMLU: 14,042 four-choice questions
    # the same values as the accuracy observations, at the run's final tokens
    differ = con.execute("""
        SELECT count(*) FROM downstream_evals d JOIN observations o
          ON o.run_id = d.run_id AND o.metric = 'downstream/' || d.task || '/acc' AND o.tokens_seen = d.tokens_seen
        WHERE d.source = 'overtrain' AND o.value = d.value""").fetchone()[0]
    assert differ == 104 * 46


@pytest.mark.parametrize(
    ("task", "questions"),
    # published evaluation split sizes: ARC-Easy/Challenge test, PIQA validation, WinoGrande dev,
    # SciQ test, LAMBADA (OpenAI) test, MMLU abstract algebra test
    [
        ("arc_easy", 2376),
        ("arc_challenge", 1172),
        ("piqa", 1838),
        ("winogrande", 1267),
        ("sciq", 1000),
        ("lambada_openai", 5153),
        ("hendrycksTest-abstract_algebra", 100),
    ],
)
def test_pythia_question_counts_from_lm_eval_standard_errors_are_the_published_split_sizes(con, task, questions):
    median, share = con.execute(
        "SELECT median(n_questions), avg(CASE WHEN abs(n_questions - ?) <= 0.005 * ? THEN 1 ELSE 0 END) FROM downstream_evals "
        "WHERE source = 'pythia' AND task = ? AND metric = 'acc'",
        [questions, questions, task],
    ).fetchone()
    assert median == questions
    assert share > 0.95  # within 0.5% (the files round the standard error)


def test_pythia_scores_are_every_checkpoint_with_its_tokens_and_chance(con):
    checkpoints = con.execute("""
        SELECT count(DISTINCT (run_id, tokens_seen)) FROM downstream_evals WHERE source = 'pythia'""").fetchone()[0]
    observed = con.execute("""
        SELECT count(DISTINCT (run_id, tokens_seen)) FROM observations WHERE source = 'pythia'""").fetchone()[0]
    assert checkpoints == observed
    chances = dict(
        con.execute(
            "SELECT task, any_value(chance) FROM downstream_evals WHERE source = 'pythia' GROUP BY task"
        ).fetchall()
    )
    assert chances["piqa"] == 0.5 and chances["arc_easy"] == 0.25 and chances["lambada_openai"] == 0.0
    assert not any(task.startswith("crows_pairs") for task in chances)  # not accuracies
    shots = {
        s for (s,) in con.execute("SELECT DISTINCT shots FROM downstream_evals WHERE source = 'pythia'").fetchall()
    }
    assert shots == {0, 5}


def test_summary_counts_downstream_scores_per_source(con):
    result = storage.summary(con)
    per_source = {s.source: s.downstream_evals for s in result.sources}
    table = dict(con.execute("SELECT source, count(*) FROM downstream_evals GROUP BY source").fetchall())
    assert {k: v for k, v in per_source.items() if v} == table
    assert result.downstream_evals == sum(table.values())
    assert {name for name in per_source if per_source[name]} == {
        module.NAME
        for module in adapters()
        if hasattr(module, "downstream_evals") or hasattr(module, "downstream_from_frames")
    }


def test_colpret_sources_scores_are_their_accuracy_observations_with_a_chance_level(con):
    """OLMo, LLM360 and MoE: the same values as their downstream accuracy observations, each with the
    task's chance level (PIQA two choices, HellaSwag four); tasks without one (TruthfulQA) left out."""
    for source in ("olmo", "llm360", "moe"):
        rows, equal = con.execute(
            """SELECT count(*), count(*) FILTER (WHERE o.value = d.value) FROM downstream_evals d
               JOIN observations o ON o.run_id = d.run_id AND o.tokens_seen = d.tokens_seen
                AND o.metric = 'downstream/' || d.task || coalesce('@' || CASE WHEN d.task IN
                    ('arc_easy', 'medmcqa', 'openbookqa5', 'race', 'mbpp') AND d.shots IS NOT NULL
                    THEN CAST(d.shots AS VARCHAR) END, '') || '/' || d.metric
               WHERE d.source = ?""",
            [source],
        ).fetchone()
        assert rows > 0 and equal == rows, source
    chances = dict(
        con.execute(
            "SELECT task, any_value(chance) FROM downstream_evals WHERE source = 'moe' GROUP BY task"
        ).fetchall()
    )
    assert chances["piqa"] == 0.5 and chances["hellaswag"] == 0.25
    assert con.execute("SELECT count(*) FROM downstream_evals WHERE task = 'truthfulqa'").fetchone() == (0,)


def test_the_table_leaves_the_data_version_that_keys_the_shipped_results(con):
    """The downstream table is outside ingest_digest: the database's data version is still the one the
    shipped sweep results were computed for, and the table has its own version in meta."""
    assert storage.stored_data_version(con) == meta.shipped_results_info()["data_version"]
    row = con.execute("SELECT value FROM meta WHERE key = 'downstream_version'").fetchone()
    assert row == (storage.downstream_version(),)


def test_a_database_without_the_downstream_version_is_stale(built_db, tmp_path):
    copy = tmp_path / "old.duckdb"
    copy.write_bytes(built_db.read_bytes())
    with duckdb.connect(str(copy)) as con:
        con.execute("DELETE FROM meta WHERE key = 'downstream_version'")
    assert storage.database_status(built_db) == "ok"
    assert storage.database_status(copy) == "stale"
