"""``scaleplan fit --runs`` and ``scaleplan plan --runs-file`` read a runs file's numbers by one rule:
a size or token count written 100M, 1.5B or 2T reads in both, as the same number."""

from __future__ import annotations

import json

from scaleplan.core import cli

SIZES = {"20M": 20e6, "40M": 40e6, "80M": 80e6, "160M": 160e6, "320M": 320e6, "1.5B": 1.5e9}
TOKENS = {"200M": 2e8, "500M": 5e8, "1B": 1e9, "3B": 3e9, "8B": 8e9, "2T": 2e12}


def _files(tmp_path):
    """The same runs twice: sizes and tokens written with suffixes, and in plain digits."""
    header = "run_name,num_params,tokens,loss\n"
    suffixed, plain = [header], [header]
    for size_text, n in SIZES.items():
        for tokens_text, d in list(TOKENS.items())[:5] if n < 1e9 else [("2T", 2e12)]:
            loss = f"{1.69 + 406.4 / n**0.34 + 410.7 / d**0.28:.5f}"
            suffixed.append(f"r{size_text},{size_text},{tokens_text},{loss}\n")
            plain.append(f"r{size_text},{n:.0f},{d:.0f},{loss}\n")
    (tmp_path / "suffixed.csv").write_text("".join(suffixed))
    (tmp_path / "plain.csv").write_text("".join(plain))
    return tmp_path / "suffixed.csv", tmp_path / "plain.csv"


def _json(capsys, argv):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_fit_and_plan_read_suffixed_sizes_and_tokens_alike(built_db, tmp_path, capsys):
    suffixed, plain = _files(tmp_path)
    where = ["--db", str(built_db), "--meta", str(tmp_path / "meta.duckdb"), "--user-db", str(tmp_path / "u.duckdb")]
    fit = [
        "fit",
        "--predict-n",
        "7B",
        "--predict-d",
        "1.4T",
        "--bootstrap",
        "0",
        "--min-tokens",
        "0",
        "--json",
        "--runs",
    ]
    fitted = {name: _json(capsys, [*where, *fit, str(path)]) for name, path in (("s", suffixed), ("p", plain))}
    assert fitted["s"]["points"] == fitted["p"]["points"] == 26  # 5 sizes x 5 budgets, and 1.5B on 2T
    assert fitted["s"]["params"] == fitted["p"]["params"]
    plan = ["plan", "--target-params", "70B", "--target-tokens", "1.4T", "--budget-dollars", "1M", "--accuracy", "5"]
    plan += ["--law-boot", "2", "--quiet", "--json", "--runs-file"]
    planned = {name: _json(capsys, [*where, *plan, str(path)]) for name, path in (("s", suffixed), ("p", plain))}
    runs = planned["s"]["candidate"]["runs"]
    assert [r["num_params"] for r in runs] == [n for n in SIZES.values() for _ in range(5 if n < 1e9 else 1)]
    assert [r["tokens"] for r in runs][:5] == list(TOKENS.values())[:5] and runs[-1]["tokens"] == 2e12
    assert planned["s"]["candidate"]["runs"] == planned["p"]["candidate"]["runs"]


def test_fit_runs_writes_sizes_tokens_and_flops_with_their_units_not_exponents(built_db, tmp_path, capsys):
    """review7: 'N=2.737e+09 parameters', 'N*=8.12e+07 (7.69e+07 - 8.59e+07)'; the text output writes
    sizes like 7B params and FLOPs like 5.88e22 FLOPs, as every screen does (core.units)."""
    _, plain = _files(tmp_path)
    where = ["--db", str(built_db), "--meta", str(tmp_path / "meta.duckdb"), "--user-db", str(tmp_path / "u.duckdb")]
    code = cli.main(
        [*where, "fit", "--runs", str(plain), "--predict-n", "7B", "--predict-d", "1.4T", "--bootstrap", "0"]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert "e+" not in out + err, out + err
    assert "N=7B params  D=1.4T tokens" in out and "split of the target's 5.88e22 FLOPs" in out
    assert "checkpoints at or below 800M tokens are dropped" in err
