"""The ``cloudlabs`` command: a thin layer over the keyword-only Python API in ``grader``.

Exit codes are :class:`grader.errors.ExitCode` (their table in docs/grading.md is generated).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from grader.emulator import commands as emulator_commands
from grader.errors import CloudlabsError, ExitCode
from grader.labs import find
from grader.results import GRADED
from grader.shard import Shard


def _reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CloudlabsError as exc:
            click.echo(f"cloudlabs: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


def _shard(ctx: click.Context, param: click.Parameter, value: str | None) -> Shard | None:
    try:
        return Shard.parse(value) if value else None
    except CloudlabsError as exc:
        raise click.BadParameter(f"{exc.message} ({exc.fix})") from None


port_option = click.option(
    "--emulator-port", "--port", "port", type=int, default=None,
    help="The emulator's port (default 4566, or CLOUDLABS_EMULATOR_PORT).",
)  # fmt: skip


@click.group()
@click.version_option(package_name="cloudlabs")
def cli() -> None:
    """cloudlabs: AWS labs in Jupyter, graded against a local emulator."""


@cli.command()
@port_option
@_reports_errors
def up(port: int | None) -> None:
    """Start the emulator in the background and wait until it is healthy."""
    status = emulator_commands.up(port=port)
    click.echo(
        f"emulator running at {status.endpoint_url} (pid {status.pid}, log {status.log_file})"
    )


@cli.command()
@port_option
@_reports_errors
def down(port: int | None) -> None:
    """Stop the emulator that `cloudlabs up` started."""
    emulator_commands.down(port=port)
    click.echo("emulator stopped")


@cli.command()
@port_option
@_reports_errors
def status(port: int | None) -> None:
    """Show whether the emulator runs and which services it serves."""
    state = emulator_commands.status(port=port)
    if not state.running:
        click.echo(f"emulator not running at {state.endpoint_url} — start it with `cloudlabs up`")
        sys.exit(ExitCode.PROBLEM)
    click.echo(
        f"emulator {state.version} ({state.backend}) at {state.endpoint_url}, pid {state.pid}"
    )
    for name, service_state in sorted(state.services.items()):
        click.echo(f"  {name:26} {service_state}")


@cli.command()
@port_option
@click.option("-n", "--lines", type=int, default=100, show_default=True, help="Lines to show.")
@_reports_errors
def logs(port: int | None, lines: int) -> None:
    """Print the end of the emulator's log."""
    click.echo(emulator_commands.logs(port=port, lines=lines))


@cli.command("grade")
@click.argument("lab")
@click.argument("submissions", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Workspace for results (default ./cloudlabs-grades/<lab>).",
)
@click.option(
    "--workers", type=int, default=None, help="Submissions graded at once (default: 2 per core)."
)
@click.option("--force", is_flag=True, help="Grade again submissions that already have a result.")
@click.option(
    "--shard", callback=_shard, default=None, metavar="K/N",
    help="Grade only shard K of N (K from 1): a stable share of the students, for `merge`.",
)  # fmt: skip
@click.option(
    "--student", "students", multiple=True, metavar="ID",
    help="Grade only this student again (repeatable); the others keep their results.",
)  # fmt: skip
@click.option("--due", default=None, metavar="TIME", help="Due time, ISO 8601 with its zone.")
@click.option("--grace-minutes", type=float, default=None, help="Minutes still on time.")
@click.option(
    "--penalty-per-day", type=float, default=None, metavar="PERCENT",
    help="Percent of the points lost per day (or part of a day) late.",
)  # fmt: skip
@click.option(
    "--max-penalty", type=float, default=None, metavar="PERCENT",
    help="The most lateness can cost, in percent of the points.",
)  # fmt: skip
@_reports_errors
def grade_command(
    lab: str, submissions: Path, out: Path | None, workers: int | None, force: bool,
    shard: Shard | None, students: tuple[str, ...], due: str | None,
    grace_minutes: float | None, penalty_per_day: float | None, max_penalty: float | None,
) -> None:  # fmt: skip
    """Grade every submission of LAB found in SUBMISSIONS (folder, nbgrader layout or zip).
    Late options override CLOUDLABS_LATE_* (docs/grading.md)."""
    from grader import grade
    from grader.config import LateConfig, load

    late_config = load(
        LateConfig, "late", due=due, grace_minutes=grace_minutes,
        penalty_per_day=penalty_per_day, max_penalty=max_penalty,
    )  # fmt: skip

    def progress(result, done: int, total: int) -> None:
        outcome = (
            f"{result.final_score:g}/{result.max_score:g}"
            if result.status == GRADED
            else result.status
        )
        click.echo(f"[{done}/{total}] {result.student}: {outcome}", err=True)

    run = grade.main(lab=lab, submissions=submissions, out=out, workers=workers, force=force,
                     shard=shard, students=students, late_config=late_config,
                     progress=progress)  # fmt: skip
    _class_report(run, f" (shard {shard})" if shard else "")
    sys.exit(grade.exit_code(run))


def _class_report(run: Any, what: str = "") -> None:
    from grader import export

    click.echo(export.class_table(run.lab, run.results))
    rejected = [r for r in run.results if r.status != GRADED]
    click.echo(
        f"\n{len(run.results)} submissions{what}: {len(run.results) - len(rejected)} graded, "
        f"{len(rejected)} not graded, {run.skipped} already graded (use --force to regrade)"
    )
    root = run.workspace.root
    click.echo(
        f"results: {root}/results, feedback: {root}/feedback, CSV: {root}/grades.csv, "
        f"JUnit: {root}/junit.xml, summary: {root}/summary.html"
    )


@cli.command()
@click.argument("lab")
@click.argument("shards", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The merged workspace.")
@_reports_errors
def merge(lab: str, shards: tuple[Path, ...], out: Path) -> None:
    """Merge the workspaces of every shard of LAB (from `grade --shard K/N`) into one run's."""
    from grader import grade
    from grader import merge as merger

    run = merger.main(lab=lab, shards=list(shards), out=out)
    _class_report(run, f" from {len(shards)} shards")
    sys.exit(grade.exit_code(run))


@cli.group()
def exam() -> None:
    """Practice exams and quizzes from the question bank, with readiness per domain."""


_chart_option = click.option("--chart", type=click.Path(path_type=Path, dir_okay=False),
                             help="Also save the readiness chart to this PNG file.")  # fmt: skip
_draw_options = [
    click.option("--items", type=click.IntRange(min=1), help="How many items (default: all)."),
    click.option("--minutes", type=click.FloatRange(min=0, min_open=True),
                 help="Time allowed (default: the exam's, in proportion to --items)."),
    click.option("--seed", type=int, help="Draw the same items again."),
]  # fmt: skip


def _ask(text: str) -> str:
    return click.prompt(text, default="", show_default=False)


def _draw(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_draw_options):
        command = option(command)
    return _chart_option(command)


@exam.command("take")
@click.argument(
    "name", default="SAA-C03", type=click.Choice(["SAA-C03", "DVA-C02"], case_sensitive=False)
)
@_draw
@_reports_errors
def exam_take(name: str, items: int | None, minutes: float | None, seed: int | None,
              chart: Path | None) -> None:  # fmt: skip
    """Sit a timed practice exam NAME (SAA-C03 or DVA-C02), drawn in its guide's domain
    weights; an unfinished attempt of it resumes."""
    from grader import exam as exams
    from grader import exam_terminal

    pending = exams.resume()
    attempt = (pending if pending and pending.exam == name.upper() and pending.seconds_left() > 0
               else exams.start(exam=name, items=items, minutes=minutes, seed=seed))  # fmt: skip
    exam_terminal.main(attempt=attempt, ask=_ask, echo=click.echo, chart=chart)


@exam.command("quiz")
@click.argument("domains", nargs=-1, required=True)
@_draw
@_reports_errors
def exam_quiz(domains: tuple[str, ...], items: int | None, minutes: float | None,
              seed: int | None, chart: Path | None) -> None:  # fmt: skip
    """A short quiz on course DOMAINS (e.g. storage), each answer reviewed at once."""
    from grader import exam as exams
    from grader import exam_terminal

    attempt = exams.quiz(list(domains), items=items, minutes=minutes, seed=seed)
    exam_terminal.main(attempt=attempt, ask=_ask, echo=click.echo, chart=chart)


@exam.command("history")
@_chart_option
@_reports_errors
def exam_history(chart: Path | None) -> None:
    """Every finished attempt with its score; --chart draws readiness across attempts."""
    from grader import exam as exams
    from grader import exam_report as report

    attempts = exams.attempts()
    rows = report.history_rows(attempts)
    for when, title, right, asked in rows:
        click.echo(f"{when}  {title:<28} {right:>3}/{asked:<3} {right / asked:>4.0%}")
    click.echo(f"{len(rows)} finished attempts")
    if chart is not None:
        report.history_chart(attempts, chart)
        click.echo(f"chart: {chart}")


@cli.group()
def hub() -> None:
    """The class hub: release labs, collect submissions, student settings (docs/classroom.md)."""


@hub.command("release")
@click.argument("labs", nargs=-1, required=True)
@_reports_errors
def hub_release(labs: tuple[str, ...]) -> None:
    """Publish LABS to the students' assignment lists (settings: CLOUDLABS_HUB_*)."""
    from grader import exchange

    for path in exchange.release(labs=list(labs)):
        click.echo(f"released {path}")


@hub.command("collect")
@click.argument("lab")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("submitted"),
              show_default=True, help="Where submitted/<student>/<lab>/ goes.")  # fmt: skip
@_reports_errors
def hub_collect(lab: str, out: Path) -> None:
    """Copy each student's newest submission of LAB out of the exchange, for `cloudlabs grade`."""
    from grader import exchange

    collection = exchange.collect(lab=lab, out=out)
    for item in collection.collected:
        click.echo(f"collected {item.student}: {item.submitted_at:%Y-%m-%d %H:%M:%S} UTC")
    for item in collection.refused:
        click.echo(f"  refused {item.student}/{item.name}: {item.reason}", err=True)
    click.echo(
        f"{len(collection.collected)} collected, {len(collection.refused)} refused, in {out}"
    )


@hub.command("student-settings")
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@_reports_errors
def hub_student_settings(out: Path) -> None:
    """Write student mode's Jupyter settings to OUT, for servers set up without the hub's spawner
    (the student image of deploy/Dockerfile.student reads them through JUPYTER_CONFIG_PATH)."""
    from grader import jupyter
    from grader.config import load
    from grader.hub import HubConfig

    course = load(HubConfig, "hub").course_id
    click.echo(f"student settings in {jupyter.student_config(out, exchange_course=course)}")


@cli.group()
def lms() -> None:
    """Grades back to the LMS: LTI 1.3 passback, or a gradebook CSV for Canvas or Moodle."""


@lms.command("push")
@click.argument("lab")
@click.argument("workspace", type=click.Path(path_type=Path, file_okay=False))
@_reports_errors
def lms_push(lab: str, workspace: Path) -> None:
    """Post LAB's final scores from WORKSPACE to the LMS (settings: CLOUDLABS_LTI_*)."""
    from grader import lms_csv, lti
    from grader.config import LtiConfig, load

    report = lti.push(lab=lab, results=lms_csv.read_results(workspace),
                      config=load(LtiConfig, "lti"), max_score=find(lab).max_score)  # fmt: skip
    click.echo(f"line item {report.lineitem} ({report.lineitem_action}); "
               f"{len(report.posted)} scores posted")  # fmt: skip
    for student, why in {**report.not_graded, **report.not_in_lms}.items():
        click.echo(f"  not posted: {student}: {why}")
    for warning in report.warnings:
        click.echo(f"  warning: {warning}", err=True)
    sys.exit(ExitCode.OK if report.complete else ExitCode.PROBLEM)


@lms.command("csv")
@click.argument("lab")
@click.argument("workspace", type=click.Path(path_type=Path, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(("canvas", "moodle")), required=True)
@click.option("--roster", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="CSV mapping student ids to the LMS's identifiers.")  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--assignment-id", default="", help="Canvas: the existing assignment's id.")
@click.option("--identifier", type=click.Choice(("username", "email", "idnumber")),
              default="username", help="Moodle: the column that names students.")  # fmt: skip
@_reports_errors
def lms_csv_command(
    lab: str, workspace: Path, fmt: str, roster: Path | None, out: Path, assignment_id: str,
    identifier: str,
) -> None:  # fmt: skip
    """Write LAB's gradebook CSV from WORKSPACE for Canvas or Moodle."""
    from grader import lms_csv

    path = lms_csv.write(lab=lab, results=lms_csv.read_results(workspace), format=fmt, out=out,
                         max_score=find(lab).max_score, roster=roster,
                         assignment_id=assignment_id, identifier=identifier)  # fmt: skip
    click.echo(f"wrote {path}")


@cli.command()
@click.argument("workspace", type=click.Path(path_type=Path, file_okay=False))
@_reports_errors
def sign(workspace: Path) -> None:
    """Sign every result in WORKSPACE with the key in CLOUDLABS_SIGNING_KEY."""
    from grader import signing

    click.echo(f"signed {len(signing.sign(root=workspace))} results in {workspace / 'results'}")


@cli.command("verify-signatures")
@click.argument("lab")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_reports_errors
def verify_signatures(lab: str, paths: tuple[Path, ...]) -> None:
    """Check the signature, lab version and student of every result of LAB found in PATHS
    (collected as <student>/.../results/<student>.json); exit 1 if any fails."""
    from grader import signing

    verdicts = signing.verify(lab=find(lab), paths=list(paths))
    for v in verdicts:
        student = " ".join(v.student.split())[:64] or "?"
        click.echo(
            f"{student:24} {'ok ' + v.score if v.ok else 'FAILED: ' + v.problem}  ({v.path})"
        )
    failed = sorted({v.student or str(v.path) for v in verdicts if not v.ok})
    click.echo(f"\n{len(verdicts)} results, {len(verdicts) - len(failed)} verified"
               + (f", failed: {', '.join(failed)}" if failed else ""))  # fmt: skip
    sys.exit(ExitCode.PROBLEM if failed else ExitCode.OK)


@cli.command()
@click.argument("target", required=False)
@_reports_errors
def check(target: str | None) -> None:
    """Check your own lab: TARGET is a lab name or your notebook (saved first)."""
    from grader import check as self_check

    result = self_check.main(target=target)
    click.echo(self_check.report(result, find(result.lab)))


@cli.command()
@click.option("--check", "check_only", is_flag=True, help="Only report stale labs (exit 1 if any).")
@_reports_errors
def release(check_only: bool) -> None:
    """Make labs/ from solutions/ with nbgrader generate_assignment."""
    from grader import release as releaser

    stale = releaser.main(check=check_only)
    if check_only and stale:
        click.echo(
            f"the release is stale for: {', '.join(stale)} — run `make release` and commit "
            "labs/ and course/bank/",
            err=True,
        )
        sys.exit(ExitCode.PROBLEM)
    click.echo(f"released: {', '.join(stale) or 'nothing changed'}")


@cli.command()
@click.option(
    "--evidence",
    is_flag=True,
    help="Also grade each lab with one exercise left blank at a time "
    "(needs the emulator): that exercise must score 0.",
)
@click.option("--lab", "labs", multiple=True, help="Only these labs (default: all).")
@_reports_errors
def validate(evidence: bool, labs: tuple[str, ...]) -> None:
    """Check every lab in solutions/ against docs/lab-format.md."""
    from grader import validate as validator

    failed = False
    for lab, problems in validator.main(labs=list(labs) or None, evidence=evidence).items():
        count = f"{len(problems)} problem{'' if len(problems) == 1 else 's'}"
        click.echo(f"{lab}: {count if problems else 'ok'}")
        for problem in problems:
            click.echo(f"  - {problem}")
        failed |= bool(problems)
    sys.exit(ExitCode.PROBLEM if failed else ExitCode.OK)


@cli.command()
@click.option("--lab", "labs", multiple=True, help="Only these labs (default: all).")
@click.option("--workers", type=int, default=None)
@_reports_errors
def demo(labs: tuple[str, ...], workers: int | None) -> None:
    """Start the emulator and grade the sample submissions of every lab."""
    from grader import demo as demo_run

    status = emulator_commands.up()
    click.echo(f"emulator running at {status.endpoint_url}")
    ok = demo_run.main(labs=list(labs) or None, workers=workers, echo=click.echo)
    click.echo(
        "\nall sample scores are as expected"
        if ok
        else "\nsome sample scores differ from samples/*/expected.json"
    )
    sys.exit(ExitCode.OK if ok else ExitCode.PROBLEM)


@cli.command()
@click.option("--lab-port", type=int, default=None, help="JupyterLab's port (default 8888).")
@click.option(
    "--emulator-port", type=int, default=None,
    help="The emulator's port (default 4566, or CLOUDLABS_EMULATOR_PORT).",
)  # fmt: skip
@click.option("--no-browser", is_flag=True, help="Do not open a browser (print the URL).")
@click.option("--instructor", is_flag=True, help="Keep nbgrader's instructor tools (formgrader).")
@_reports_errors
def lab(
    lab_port: int | None, emulator_port: int | None, no_browser: bool, instructor: bool
) -> None:
    """Start the emulator and JupyterLab on the course, opened on course/00-start-here.ipynb."""
    from grader import jupyter

    jupyter.main(lab_port=lab_port, emulator_port=emulator_port, open_browser=not no_browser,
                 instructor=instructor)  # fmt: skip
