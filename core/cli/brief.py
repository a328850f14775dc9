"""``scaleplan brief``: a decision brief (one-page PDF with an appendix, PowerPoint deck) of saved scenarios.

    scaleplan brief --scenario NAME [--scenario NAME ...] [--pdf FILE] [--pptx FILE] [--force]

One scenario gives its brief; two to four give the comparison's. An existing file is never
replaced unless ``--force`` is given. The charts are rendered by kaleido with the machine's
Chromium (``/usr/bin/chromium``, or ``$BROWSER_PATH``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scaleplan.core import __version__, brief, planning, scenarios, storage
from scaleplan.core.cli import _common
from scaleplan.core.cli import scenario as scenario_cli
from scaleplan.core.cli._common import CLIError
from scaleplan.core.settings import Settings


def protected_paths(settings: Settings) -> tuple[brief.Protected, ...]:
    """scaleplan's own files, which a brief never writes over (even with ``--force``): the
    databases and the log of ``settings``, the moved-aside corrupt databases (``<db>.corrupt-*``) and
    the temporary files of database builds (``<db>.tmp-<pid>``, :func:`scaleplan.core.storage.build_database`),
    the downloads folder (with the partial ``.part`` downloads of :func:`scaleplan.core.manifest.download`)
    and the shipped data (:func:`scaleplan.core.meta.shipped.shipped_data_folder`); folders with anything
    inside."""
    from scaleplan.core.meta import shipped  # the sweep's package (joblib ...): only when a brief is written

    db = settings.db_path
    return (
        brief.Protected("the database", db),
        brief.Protected(
            "a corrupt database moved aside", db.with_name(db.name + storage.CORRUPT_SUFFIX + "*"), "names"
        ),
        brief.Protected(
            "a temporary file of a database build",
            db.with_name(db.name + storage.TMP_INFIX + "*"),  # its .wal too
            "names",
        ),
        brief.Protected("the meta-analysis results file", settings.meta_path),
        brief.Protected("the user store (saved studies and scenarios)", settings.user_db_path),
        brief.Protected("scaleplan's log", settings.log_path),
        brief.Protected("the downloads folder (source files kept between builds)", settings.download_dir, "folder"),
        brief.Protected(
            "scaleplan's shipped data (the data manifest, the shipped sweep results)",
            shipped.shipped_data_folder(),
            "folder",
        ),
    )


#: The file name ending each output flag needs (compared case-insensitively).
SUFFIXES = {"pdf": ".pdf", "pptx": ".pptx"}


def _check_suffixes(args: argparse.Namespace) -> None:
    """A PDF goes to a file named ``.pdf`` and a deck to a ``.pptx``: a viewer picks the program by the
    name, so a PDF named ``x.pptx`` would not open."""
    for kind, suffix in SUFFIXES.items():
        value = getattr(args, kind)
        if value is not None and not value.lower().endswith(suffix):
            raise CLIError(
                f"--{kind} {value!r}: the {kind.upper()} file's name must end in {suffix} "
                f"(e.g. --{kind} brief{suffix}); give --pdf FILE.pdf for the PDF and --pptx FILE.pptx for the deck"
            )


def unavailable_message(outcomes: list[scenarios.ScenarioOutcome | scenarios.ScenarioUnavailable]) -> str | None:
    """Why no brief can be made when no named scenario can be planned now (each named, with its reason);
    None when at least one can."""
    if not outcomes or any(isinstance(o, scenarios.ScenarioOutcome) for o in outcomes):
        return None
    reasons = "; ".join(f"{o.name!r}: {o.reason}" for o in outcomes if isinstance(o, scenarios.ScenarioUnavailable))
    return (
        f"no brief was written: none of the named scenarios can be planned now ({reasons}). "
        "Name a scenario that can (`scaleplan scenario list`), or save it again with `scaleplan scenario save --replace`"
    )


def cmd_brief(args: argparse.Namespace, settings: Settings) -> int:
    if args.pdf is None and args.pptx is None:
        raise CLIError("give --pdf FILE and/or --pptx FILE: where to write the brief")
    targets = [(_common.user_path(p), kind) for p, kind in ((args.pdf, "pdf"), (args.pptx, "pptx")) if p]
    protected = protected_paths(settings)
    try:  # every target checked before anything is rendered
        brief.check_targets([path for path, _ in targets], force=args.force, protected=protected)
    except brief.SameTargetError:
        raise CLIError(f"--pdf and --pptx are the same file ({args.pdf}); give each its own file name") from None
    _check_suffixes(args)  # after the paths' own checks: a scaleplan file or a folder is named as such
    named = scenario_cli.load_named(settings, args.scenario)
    outcomes = scenario_cli.evaluate_all(named, settings, quiet=args.quiet, n_boot=args.law_boot)
    refusal = unavailable_message(outcomes)
    if refusal is not None:
        raise CLIError(refusal)
    for outcome in outcomes:
        if isinstance(outcome, scenarios.ScenarioUnavailable):  # the brief says so too
            print(
                f"scaleplan: note: scenario {outcome.name!r} cannot be planned now: {outcome.reason}", file=sys.stderr
            )
    comparison = scenarios.compare(outcomes)
    versions = {o.data_version for o in outcomes if isinstance(o, scenarios.ScenarioOutcome)}
    made = brief.build_brief(
        comparison,
        scaleplan_version=__version__,
        data_version=", ".join(sorted(versions)) or _common.data_version(settings),
    )
    files: list[tuple[Path, bytes]] = []
    for path, kind in targets:
        if kind == "pdf":
            pdf = brief.brief_pdf(made)
            if pdf.missing.warning:
                print(f"scaleplan: warning: {pdf.missing.warning}", file=sys.stderr)
            files.append((path, pdf.data))
        else:
            files.append((path, brief.brief_pptx(made)))
    brief.write_files(files, force=args.force, protected=protected)  # all or none
    for path, data in files:
        print(f"wrote {path} ({len(data):,} bytes)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "brief",
        parents=[_common.settings_parent()],
        help=_common.COMMAND_HELP["brief"],
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scenario", action="append", required=True, metavar="NAME", help="a saved scenario (repeat)")
    p.add_argument("--pdf", help="write the PDF brief to this file")
    p.add_argument("--pptx", help="write the PowerPoint deck to this file")
    p.add_argument("--force", action="store_true", help="replace existing files")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--law-boot", type=int, default=planning.DEFAULT_LAW_BOOT, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_brief)
