"""The ``envelope`` command line: one-line errors, documented exit codes, no tracebacks
unless ``--debug``.

Exit codes: 0 success; 2 bad input; 3 infeasible; 4 solver backend missing or failed;
5 plan audit failed (a bug: please report); 6 stopped without any plan (time limit);
130 interrupted (Ctrl-C; ``solve`` still writes the best plan found so far); 143 terminated
(SIGTERM: the same orderly stop as Ctrl-C); 1 unexpected error.

SIGTERM is turned into ``Terminated`` (a ``KeyboardInterrupt``) in the main thread, so every path
that handles Ctrl-C — solver children asked to stop and keep their incumbent, process pools
stopped, exchange files removed — handles it too; only the exit code differs. Further SIGTERMs
during that stop are ignored (the stop is bounded; SIGKILL still works, and leaves no child).
"""

from __future__ import annotations

import math
import os
import signal
import sys
import textwrap
import threading
import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from solver import __version__
from solver.errors import EnvelopeError, InfeasibleError, InputError, NoSolutionError
from solver.run.executor import Terminated

#: Exit codes of an interrupted (Ctrl-C) and a terminated (SIGTERM) run.
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143

_terminated = False  # SIGTERM received during this invocation


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM: stop as Ctrl-C does (raise ``Terminated`` once; later ones are ignored)."""
    global _terminated
    if not _terminated:
        _terminated = True
        raise Terminated


def _handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn Envelope errors into one message on stderr and the error's exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        context = click.get_current_context()
        debug = context.find_root().params.get("debug", False)
        try:
            done = fn(*args, **kwargs)
            failed = context.meta.get(_DOCUMENTS_FAILED)
            if failed:    # the tables were written; the report or workbook asked for was not
                click.echo(f"error: {failed}", err=True)
                sys.exit(1)
            return done
        except EnvelopeError as exc:
            if debug:
                traceback.print_exc()
            kind = "infeasible" if isinstance(exc, InfeasibleError) else "error"
            text = str(exc)
            if isinstance(exc, InputError):  # one line: escape line breaks and other unprintables from the input
                text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
            click.echo(f"{kind}: {text}", err=True)
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            sys.stderr.close()
            sys.exit(0)
        except KeyboardInterrupt as exc:
            terminated = _terminated or isinstance(exc, Terminated)
            click.echo("terminated" if terminated else "interrupted", err=True)
            sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)
        except Exception as exc:  # an unexpected bug: say so, briefly
            if debug:
                traceback.print_exc()
            click.echo(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
            sys.exit(1)

    return wrapper


class _Envelope(click.Group):
    """The ``envelope`` group: SIGTERM is handled like Ctrl-C for the duration of a command."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command line with the SIGTERM handler installed (and restored afterwards); an
        interrupted run ended by SIGTERM exits 143 rather than 130."""
        global _terminated
        _terminated = False
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
        try:
            return super().main(*args, **kwargs)
        except SystemExit as exc:
            # SIGTERM during a command exits 130 there; outside one (while click parses the arguments, or
            # after the command returned) click's own abort exits 1: either way, it was a SIGTERM
            if _terminated and exc.code in (EXIT_INTERRUPTED, 1):
                raise SystemExit(EXIT_TERMINATED) from None
            raise
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


@click.group(cls=_Envelope, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="envelope")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
def main(debug: bool) -> None:
    """Envelope: decide how a constrained technology envelope is split across systems and projects."""


def solver_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that solves."""
    fn = click.option("--seed", type=int, default=None, help="Solver random seed.")(fn)
    fn = click.option("--threads", type=int, default=None, help="Solver threads (0 = solver default).")(fn)
    fn = click.option("--gap", "mip_gap", type=float, default=None,
                      help="Relative MIP gap at which to stop (default from the scenario, else 1e-3 = 0.1%).")(fn)
    fn = click.option("--time-limit", type=float, default=None, help="Seconds (default from the scenario).")(fn)
    fn = click.option("--backend", type=str, default=None, help="highs, cbc, scip or cpsat.")(fn)
    return fn


_SOLVER_FLAGS = {"backend": "--backend", "time_limit": "--time-limit", "mip_gap": "--gap", "threads": "--threads",
                 "seed": "--seed"}


def check_solver_options(**given: Any) -> None:
    """``InputError`` naming the command-line option (not the scenario file) whose value is invalid."""
    from pydantic import ValidationError

    from solver.backends import backend_names
    from solver.data.scenario import SolverSettings

    given = {k: v for k, v in given.items() if v is not None}
    if "backend" in given and given["backend"] not in backend_names():
        raise InputError(None, f"option --backend: unknown backend '{given['backend']}'; "
                               f"choose one of: {', '.join(backend_names())}")
    try:
        SolverSettings.model_validate(given)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err.get("loc") else ""
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise InputError(None, f"option {_SOLVER_FLAGS.get(name, name)}: {msg} (got {err.get('input')!r})") from None


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@_handle_errors
def validate(scenario: Path) -> None:
    """Check a scenario, its instance and policy model; solve nothing."""
    from solver.data.scenario import load_scenario
    from solver.mip.formulation import formulate
    from solver.pipeline.checks import obvious_causes

    sc = load_scenario(scenario)
    form = formulate(sc)
    inst = sc.instance
    causes = obvious_causes(sc)
    if causes:
        raise InfeasibleError(f"{scenario}: the input is valid but cannot be satisfied", causes)
    click.echo(f"{scenario}: valid — instance {inst.name} ({len(inst.systems)} systems, "
               f"{len(inst.organisations)} organisations, {len(inst.projects)} projects, years "
               f"{inst.years[0]}-{inst.years[-1]}), model {sc.policy.name}; "
               f"{form.model.n_integer} binaries, {form.model.n_rows} rows")


def document_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--report`` and ``--xlsx``: the result folder also gets report.html and/or results.xlsx."""
    fn = click.option("--xlsx", is_flag=True,
                      help="Also write every table as one workbook, results.xlsx, in the output folder.")(fn)
    return click.option("--report", is_flag=True,
                        help="Also write report.html (the HTML report: envelope report) in the output folder.")(fn)


def _engine(options: dict[str, Any], workers: int) -> Any:
    """Take ``--engine`` and ``--scheduler`` out of a command's options: the execution context to run on."""
    from solver.batch.runner import engine_context

    engine, scheduler = options.pop("engine", "local"), options.pop("scheduler", None)
    if scheduler and engine != "dask":
        raise InputError(None, "option --scheduler: needs --engine dask")
    return engine_context(engine, workers, scheduler)


def _documents(options: dict[str, Any]) -> tuple[bool, bool]:
    """Take ``--report`` and ``--xlsx`` out of a command's options (the rest are the solver's)."""
    return bool(options.pop("report", False)), bool(options.pop("xlsx", False))


_DOCUMENTS_FAILED = "envelope.documents_failed"


def _with_documents(files: dict[str, Any], target: Path, report: bool, xlsx: bool) -> dict[str, Any]:
    """``files`` plus report.html and results.xlsx when asked for, made from the files themselves, so that
    they show what the folder holds (as ``envelope report`` and ``envelope workbook`` would later). If making
    either fails, the tables are still written (a long solve is never lost) and the command then exits 1."""
    if not (report or xlsx):
        return files
    from solver.present.results import result_from_files

    out = dict(files)
    doing = "report.html"
    try:
        result = result_from_files(files, target)
        if report:
            from solver.present.html_report import build_report

            out["report.html"] = build_report([result]).html
        if xlsx:
            doing = "results.xlsx"
            from solver.present.xlsx import result_workbook

            out["results.xlsx"] = result_workbook(result)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        click.get_current_context().meta[_DOCUMENTS_FAILED] = (
            f"{target}: the tables were written, but {doing} could not be made ({type(exc).__name__}: {exc}); "
            "please report it")
        return {k: v for k, v in out.items() if k not in ("report.html", "results.xlsx")}
    return out


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: out/<scenario name>).")
@solver_options
@document_options
@_handle_errors
def solve(scenario: Path, output: Path | None, backend: str | None, time_limit: float | None,
          mip_gap: float | None, threads: int | None, seed: int | None, report: bool, xlsx: bool) -> None:
    """Solve a scenario, print a summary and write plan.csv, systems.csv, misses.csv, budget.csv,
    summary.json and timing.json."""
    from solver.analyses.engine import jsonable
    from solver.api import against_baseline
    from solver.api import solve as run_solve
    from solver.data.readers import safe_text
    from solver.data.scenario import load_scenario
    from solver.errors import EnvelopeError
    from solver.present.outputs import check_output_folder, input_paths, write_folder
    from solver.present.report import format_summary, summary, tables, timings

    check_solver_options(backend=backend, time_limit=time_limit, mip_gap=mip_gap, threads=threads, seed=seed)
    sc = load_scenario(scenario)
    target = output if output is not None else Path("out") / sc.name
    inputs = input_paths(sc)
    check_output_folder(target, inputs)     # refuse a foreign folder (or one holding an input) before a long solve
    base_sc = load_scenario(sc.baseline) if sc.baseline else None   # read (and checked) before any solve
    if base_sc is not None and (list(base_sc.instance.years) != list(sc.instance.years) or set(
            base_sc.instance.systems["system_id"]) != set(sc.instance.systems["system_id"])):
        raise InputError(scenario, f"key 'baseline': {base_sc.path} is on another instance ({base_sc.instance.name}, "
                                   f"years {base_sc.instance.years[0]}-{base_sc.instance.years[-1]}, "
                                   f"{len(base_sc.instance.systems)} systems); a baseline has the same years and "
                                   "systems (use envelope diff to compare different instances)")
    options = dict(backend=backend, time_limit=time_limit, mip_gap=mip_gap, threads=threads, seed=seed)
    outcome = run_solve(sc, **options)
    interrupted = "the best plan found so far" if outcome.interrupted else ""
    baseline, skipped = None, ""
    if base_sc is not None and not interrupted:
        try:
            baseline = against_baseline(sc, outcome, base_sc, **options)
        except KeyboardInterrupt:        # Ctrl-C while the baseline solves: write the plan, without the comparison
            interrupted = "the plan (the baseline's solve was stopped: no comparison)"
        except EnvelopeError as exc:    # a baseline with no plan: the plan stands, the comparison is skipped
            skipped = f"{type(exc).__name__}: {exc}"
        if baseline is not None and baseline[0].interrupted:
            baseline, interrupted = None, "the plan (the baseline's solve was stopped: no comparison)"
    basis = base_sc.envelope if base_sc is not None and sc.policy.fair_share.basis == "envelope" else None
    t = tables(outcome, basis)
    files: dict[str, Any] = {f"{k}.csv": v for k, v in t.items()}
    files["summary.json"] = summary(outcome)
    if base_sc is not None:
        files["summary.json"]["baseline"] = {
            "scenario": base_sc.name, "path": str(Path(base_sc.path).resolve()), "identity": base_sc.identity,
            "fair_share_basis": "the baseline's envelope" if basis is not None else "the policy's basis (spend)",
            "compared": baseline is not None, "skipped": skipped}
    if baseline:
        base, change = baseline
        files["changes.csv"] = change.tables["changes"]
        files["summary.json"]["baseline"].update(jsonable({
            "objective": round(base.objective, 6), "status": base.status.value,
            **{k: change.summary[k] for k in ("envelope_change", "policy_change", "national_funding", "projects",
                                              "withdrawn", "unspent", "revenue_tail", "briefing")}}))
    files["timing.json"] = timings(outcome)
    files = _with_documents(files, target, report, xlsx)
    written = write_folder(target, files, inputs)
    click.echo(format_summary(outcome, t, "the baseline's envelope" if basis is not None else ""))
    if baseline:
        click.echo(f"\nAgainst its baseline, scenario {safe_text(base_sc.name)} (changes.csv):")  # type: ignore[union-attr]
        for line in textwrap.wrap(baseline[1].summary["briefing"], 100):
            click.echo(safe_text(line))
    elif skipped:
        click.echo(f"\nNot compared with its baseline {safe_text(base_sc.name)}: {safe_text(skipped)}")  # type: ignore[union-attr]
    click.echo(f"\nWrote {', '.join(files)} to {written}")
    if interrupted:  # a script must tell this from a finished run
        click.echo(f"interrupted: {interrupted} was written to {written}", err=True)
        sys.exit(130)


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--backend", type=str, default=None,
              help="Backend for the elastic model (default: the scenario's, if it solves continuous slacks exactly).")
@click.option("--time-limit", type=float, default=None, help="Seconds (default from the scenario).")
@_handle_errors
def explain(scenario: Path, backend: str, time_limit: float | None) -> None:
    """Say why a scenario has no plan: obvious causes, then the smallest relaxation of the rules
    (budgets, local limits, mandatory items, commitments, dependencies, fair shares,
    standardisation) that would make it feasible. Exit 0 if the scenario is feasible."""
    from solver.backends import backends_with, get_backend
    from solver.data.scenario import load_scenario
    from solver.pipeline.explain import explain as run_explain

    check_solver_options(backend=backend, time_limit=time_limit)
    if backend is not None and not get_backend(backend).capabilities.exact_continuous:
        raise InputError(None, f"option --backend: the elastic model needs a backend with exact continuous "
                               f"variables; {backend} rounds them (use {', '.join(backends_with('exact_continuous'))})")
    sc = load_scenario(scenario)
    why = run_explain(sc, backend=backend, time_limit=time_limit)
    if why.feasible:
        click.echo(f"{scenario}: feasible — no rule needs relaxing")
        return
    if not why.causes and not why.relaxations:
        raise NoSolutionError(f"the elastic model stopped ({why.status}) before deciding; raise --time-limit")
    # the explanation is this command's output: on stdout (so `> report.txt` keeps it), exit 3
    click.echo(f"infeasible: {InfeasibleError(f'scenario {sc.name}: no plan satisfies every rule', why.lines())}")
    sys.exit(InfeasibleError.exit_code)


@main.command("models")
def list_models_cmd() -> None:
    """List the built-in policy models, each with its one-line description."""
    from solver.data.scenario import builtin_models_dir, list_models, load_policy

    names = list_models()
    width = max((len(n) for n in names), default=0)
    for name in names:
        policy, _ = load_policy(name, builtin_models_dir())
        click.echo(f"{name:{width}}  {policy.description}")


@main.command("backends")
def list_backends_cmd() -> None:
    """List solver backends and whether each is installed."""
    from solver.backends import available_backends, backend_names

    ok = set(available_backends())
    for name in backend_names():
        click.echo(f"{name:6} {'available' if name in ok else 'not installed'}")


def _analysis_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by the sensitivity commands."""
    fn = document_options(fn)
    fn = click.option("--scheduler", default=None, metavar="ADDRESS",
                      help="With --engine dask: a running Dask scheduler (tcp://host:8786) instead of a local "
                           "cluster.")(fn)
    fn = click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                      help="Where re-solves run: this machine (--workers processes) or Dask (a LocalCluster of "
                           "--workers, or --scheduler).")(fn)
    fn = click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
                      help="Parallel re-solves (processes, or Dask workers).")(fn)
    fn = click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
                      help="Output folder (default: out/<scenario>-<command>).")(fn)
    return solver_options(fn)


def _run_analysis(scenario: Path, command: str, output: Path | None, run: Callable[..., Any],
                  solver: dict[str, Any], workers: int = 1, **kwargs: Any) -> None:
    """Load, run one analysis on one execution context (``--workers``: one process pool for all
    its stages), print its ranked summary and write its tables atomically."""
    from solver.data.scenario import load_scenario
    from solver.present.analyses import render
    from solver.present.outputs import check_output_folder, input_paths, output_files, write_folder

    report, xlsx = _documents(solver)
    engine = _engine(solver, workers)
    check_solver_options(**solver)
    sc = load_scenario(scenario).with_solver(**solver)
    target = output if output is not None else Path("out") / f"{sc.name}-{command}"
    inputs = input_paths(sc)
    check_output_folder(target, inputs)     # refuse a foreign folder (or one holding an input) first
    with engine as context:
        analysis = run(sc, context=context, **kwargs)
    files = _with_documents(output_files(analysis), target, report, xlsx)
    written = write_folder(target, files, inputs)
    click.echo(render(analysis))
    click.echo(f"\nWrote {', '.join(files)} to {written}")


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--from", "start", type=float, default=1.0, show_default=True, help="Highest level (× envelope).")
@click.option("--to", "stop", type=float, default=0.5, show_default=True, help="Lowest envelope level.")
@click.option("--step", type=float, default=0.05, show_default=True, help="Step between levels.")
@click.option("--cut", "cuts", type=float, multiple=True,
              help="Cut in £m (>= 0) instead of levels (repeatable).")
@click.option("--year", type=int, default=None, help="Cut only this year (with --cut).")
@click.option("--pot", type=click.Choice(["capital", "revenue"]), default=None, help="Cut only this pot.")
@click.option("--nested", is_flag=True, help="Force each lower level's plan to be a subset of the one above.")
@_analysis_options
@_handle_errors
def ladder(scenario: Path, start: float, stop: float, step: float, cuts: tuple[float, ...], year: int | None,
           pot: str | None, nested: bool, output: Path | None, workers: int, **solver: Any) -> None:
    """Cut ladder: who drops out first as the envelope is cut."""
    from solver.analyses.cut_ladder import ladder as run

    bad = [c for c in cuts if not (c >= 0 and math.isfinite(c))]
    if bad:
        raise InputError(None, f"option --cut: must be a non-negative amount of £m (got {bad[0]:g})")
    _run_analysis(scenario, "ladder", output, run, solver, start=start, stop=stop, step=step,
                  cuts_gbpm=list(cuts) or None, year=year, pot=pot, nested=nested, workers=workers)


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--delta", type=float, default=1.0, show_default=True,
              help="£m (> 0) added and removed per year and pot.")
@_analysis_options
@_handle_errors
def value(scenario: Path, delta: float, output: Path | None, workers: int, **solver: Any) -> None:
    """Value of money: what £1m more (or less) in each year and pot is worth."""
    from solver.analyses.value import value_of_money as run

    if not (delta > 0 and math.isfinite(delta)):
        raise InputError(None, f"option --delta: must be a positive number of £m (got {delta:g})")
    _run_analysis(scenario, "value", output, run, solver, delta=delta, workers=workers)


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@_analysis_options
@_handle_errors
def rules(scenario: Path, output: Path | None, workers: int, **solver: Any) -> None:
    """Price of each rule: the objective gained by relaxing each active rule family in turn."""
    from solver.analyses.prices import rule_prices as run

    _run_analysis(scenario, "rules", output, run, solver, workers=workers)


@main.command()
@click.argument("base", type=click.Path(path_type=Path))
@click.argument("other", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: out/<base>-vs-<other>).")
@solver_options
@document_options
@_handle_errors
def diff(base: Path, other: Path, output: Path | None, **solver: Any) -> None:
    """Who loses and gains what from BASE's plan to OTHER's: each a scenario file (solved now) or a result
    folder of `envelope solve` (re-audited against its scenario). Prints one screen — the cut, losers by
    category, kind, ICB and region, commitments withdrawn, unspent money — and writes changes.csv, by_*.csv,
    envelope.csv, withdrawn.csv and summary.json (with a briefing paragraph)."""
    from solver.analyses.diff import diff_plans
    from solver.api import solve as run_solve
    from solver.data.scenario import load_scenario
    from solver.present.analyses import render
    from solver.present.outputs import check_output_folder, input_paths, output_files, read_outcome, write_folder

    report, xlsx = _documents(solver)
    check_solver_options(**solver)

    def plan_of(path: Path) -> Any:
        if path.is_dir():
            return read_outcome(path)
        return run_solve(load_scenario(path), **solver)

    inputs = [base, other]                      # scenario files, or result folders: never written over
    target = output if output is not None else Path("out") / f"{base.stem or base.name}-vs-{other.stem or other.name}"
    check_output_folder(target, inputs)
    b, o = plan_of(base), plan_of(other)
    if b.interrupted or o.interrupted:          # a plan cut short by Ctrl-C is no basis for who-loses-what
        raise KeyboardInterrupt
    analysis = diff_plans(b, o)
    files = _with_documents(output_files(analysis), target, report, xlsx)
    written = write_folder(target, files, [*inputs, *input_paths(b.scenario), *input_paths(o.scenario)])
    click.echo(render(analysis))
    click.echo(f"\nWrote {', '.join(files)} to {written}")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--models", "models", multiple=True, metavar="MODEL",
              help="Policy model: a built-in name or a .toml file (repeatable; `--models models/*.toml` works: "
                   "model files after it are told from scenarios by their content). Default: every built-in model.")
@click.option("--reference", default="need-first", show_default=True,
              help="Policy every other is priced against (a built-in name or a .toml file).")
@_analysis_options
@_handle_errors
def compare(files: tuple[Path, ...], models: tuple[str, ...], reference: str, output: Path | None, workers: int,
            **solver: Any) -> None:
    """Compare allocation policies on the same scenarios: one metrics row per scenario × policy (objective,
    % of the need-first optimum, price, category-0/1 money, Gini/Theil, fair-share coverage, unspent money,
    revenue consequences, time and gap), each policy's plan, and what each costs against need-first."""
    from solver.analyses.compare import compare_policies, load_models
    from solver.data.instance import read_toml
    from solver.data.scenario import list_models, load_scenario
    from solver.present.analyses import render
    from solver.present.outputs import check_output_folder, input_paths, output_files, write_folder

    report, xlsx = _documents(solver)
    engine = _engine(solver, workers)
    check_solver_options(**solver)
    scenario_files, model_refs = [], list(models)
    for f in files:
        if not f.exists() and str(f) in list_models():
            raise InputError(f, f"'{f}' is a built-in model name: give one --models per name "
                                f"(--models {' --models '.join([*models, str(f)])}), or model files after one --models")
        doc = read_toml(f)
        (model_refs if "instance" not in doc and "name" in doc else scenario_files).append(str(f))
    if not scenario_files:
        raise InputError(None, "compare needs at least one scenario file (a .toml with an 'instance' key)")
    scenarios = [load_scenario(f).with_solver(**solver) for f in scenario_files]
    names = [sc.name for sc in scenarios]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(None, f"two scenarios are named '{dup}'; give each compared scenario its own file name")
    policies = load_models(model_refs or list_models())
    target = output if output is not None else Path("out") / f"{scenarios[0].name}-compare"
    inputs = [p for sc in scenarios for p in input_paths(sc)] + [Path(path) for _, path in policies]
    check_output_folder(target, inputs)
    with engine as context:
        analysis = compare_policies(scenarios, policies, reference=reference, context=context)
    files = _with_documents(output_files(analysis), target, report, xlsx)
    written = write_folder(target, files, inputs)
    click.echo(render(analysis))
    click.echo(f"\nWrote {', '.join(files)} to {written}")


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--samples", type=click.IntRange(1, 100000), default=100, show_default=True,
              help="Number of samples (uncertain costs, benefits and weights) to re-solve.")
@_analysis_options
@_handle_errors
def robust(scenario: Path, samples: int, output: Path | None, workers: int, **solver: Any) -> None:
    """Robustness: each project's inclusion frequency under uncertain costs, benefits and weights
    (--seed seeds the sampling and the solver)."""
    from solver.analyses.robust import robustness as run

    _run_analysis(scenario, "robust", output, run, solver, samples=samples, seed=solver.get("seed") or 0,
                  workers=workers)


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--k", type=click.IntRange(1, 100), default=5, show_default=True, help="Number of alternatives.")
@click.option("--within", type=str, default="2%", show_default=True, help="Objective loss allowed, e.g. 2% or 0.02.")
@click.option("--samples", type=click.IntRange(0, 100000), default=20, show_default=True,
              help="Robustness samples used to score each alternative.")
@click.option("--mga-gap", type=str, default="5%", show_default=True,
              help="Stop each round once its distance is within this of the best possible, e.g. 5% or 0.05.")
@_analysis_options
@_handle_errors
def alternatives(scenario: Path, k: int, within: str, samples: int, mga_gap: str, output: Path | None,
                 workers: int, **solver: Any) -> None:
    """Near-optimal alternatives: plans within a stated loss that differ most from the optimum
    (--seed seeds the robustness sampling and the solver)."""
    from solver.analyses.near_optimal import alternatives as run

    _run_analysis(scenario, "alternatives", output, run, solver, k=k, within=_fraction(within, "--within"),
                  robustness_samples=samples, seed=solver.get("seed") or 0, workers=workers,
                  mga_gap=_fraction(mga_gap, "--mga-gap"))


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--k", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Funded and unfunded projects closest to the margin.")
@click.option("--tolerance", type=float, default=0.01, show_default=True,
              help="Bisection tolerance on the factor, relative, in (0, 1).")
@_analysis_options
@_handle_errors
def thresholds(scenario: Path, k: int, tolerance: float, output: Path | None, workers: int, **solver: Any) -> None:
    """Borderline thresholds: the cost or benefit change that drops or brings in a project."""
    from solver.analyses.borderline import thresholds as run

    if not 0 < tolerance < 1:
        raise InputError(None, f"option --tolerance: must be a fraction in (0, 1), e.g. 0.01 (got {tolerance:g})")
    _run_analysis(scenario, "thresholds", output, run, solver, k=k, tolerance=tolerance, workers=workers)


@main.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True, help="The HTML file to write.")
@click.option("--figures", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write each figure as PNG and SVG into this folder (for slides).")
@click.option("--title", default=None, help="The report's title (default: from the first result).")
@_handle_errors
def report(results: tuple[Path, ...], output: Path, figures: Path | None, title: str | None) -> None:
    """One self-contained HTML report (figures inline, nothing loaded from the network, printable) of the
    RESULTS folders written by solve, the analyses, compare, diff or batch; each section appears when its
    data is there."""
    from solver.present.html_report import build_report, figure_files, is_envelope_report
    from solver.present.outputs import check_output_folder, write_file, write_folder
    from solver.present.results import read_result

    given = list({os.path.realpath(r): r for r in results}.values())     # a folder given twice is reported once
    loaded = [read_result(r) for r in given]
    if figures is not None:
        check_output_folder(figures, results)
    page = build_report(loaded, title)

    written = write_file(output, page.html, is_envelope_report, "an Envelope report nobody has edited since",
                         inputs=results)
    click.echo(f"Wrote {written} ({len(page.sections)} sections, {len(page.plots)} figures)")
    if figures is not None:
        folder = write_folder(figures, figure_files(page), results)
        click.echo(f"Wrote {len(page.plots)} figures as PNG and SVG to {folder}")


# --------------------------------------------------------------------------- generate and export (issue 9)


@main.command()
@click.option("--systems", type=int, required=True, help="Systems (1-1000).")
@click.option("--orgs-per-system", type=int, required=True, help="Organisations in each system (1-100).")
@click.option("--projects-per-org", type=int, required=True,
              help="Candidate projects of each organisation (1-20); each system also gets one system-wide project.")
@click.option("--years", type=int, default=3, show_default=True, help="Envelope years from 2026 (1-10).")
@click.option("--tightness", type=float, default=0.3, show_default=True,
              help="Envelope per year as a share of what the bids ask per year, in (0, 1].")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: equal arguments, equal files.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write the instance and scenario.toml to.")
@_handle_errors
def generate(systems: int, orgs_per_system: int, projects_per_org: int, years: int, tightness: float, seed: int,
             output: Path) -> None:
    """Write a random, valid instance (six CSV tables, instance.toml) and a scenario.toml using the default
    model to a folder: for scaling studies, deterministic by seed (docs/generator.md)."""
    from solver.data.generate import GeneratorSettings
    from solver.data.generate import generate as make
    from solver.data.scenario import load_scenario
    from solver.pipeline.checks import obvious_causes
    from solver.present.outputs import check_output_folder, write_folder

    settings = GeneratorSettings(systems, orgs_per_system, projects_per_org, years, tightness, seed)
    settings.check()
    check_output_folder(output)
    made = make(settings)
    written = write_folder(output, made.files())
    try:   # valid by construction: a written instance that does not load is a bug, reported as one (exit 1)
        sc = load_scenario(written / "scenario.toml")
    except InputError as exc:
        raise RuntimeError(f"the written instance does not load (a bug): {exc}") from None
    causes = obvious_causes(sc)
    if causes:
        raise RuntimeError(f"the generated instance is infeasible (a bug): {causes[0]}")
    f = made.facts
    click.echo(f"Wrote {settings.name} to {written}: {f['systems']} systems, {f['organisations']} organisations, "
               f"{f['projects']} projects ({f['mandatory']} mandatory, {f['committed']} committed, "
               f"{f['groups']} alternatives groups, {f['dependencies']} dependencies), years "
               f"{sc.instance.years[0]}-{sc.instance.years[-1]}; envelope £{f['envelope_gbpm']:,.3f}m = "
               f"{settings.tightness:g} × demand £{f['demand_gbpm']:,.3f}m")
    click.echo(f"Solve it with: envelope solve {written / 'scenario.toml'}")


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=str, required=True, help="mps (free MPS) or lp (CPLEX LP).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: out/<scenario name>.<format>); the name map goes to FILE.names.csv.")
@_handle_errors
def export(scenario: Path, fmt: str, output: Path | None) -> None:
    """Write the scenario's exact MIP (maximise, objective offset kept) as an MPS or LP file for any
    external solver, with safe names and a name map FILE.names.csv (docs/export.md)."""
    from solver.data.scenario import load_scenario
    from solver.present.export import check_format, export_model
    from solver.present.outputs import input_paths

    fmt = check_format(fmt)
    sc = load_scenario(scenario)
    target = output if output is not None else Path("out") / f"{sc.name}.{fmt}"
    done = export_model(sc, target, fmt, input_paths(sc))
    click.echo(f"Wrote {done.path} ({fmt.upper()}, maximise, objective offset {done.offset:g}; {done.columns} "
               f"columns, {done.integer_columns} integer; {done.rows} rows) and its name map {done.names_path} "
               f"(written by backend {done.backend})")


@main.group("import")
def import_group() -> None:
    """Import a public benchmark file (pb, mkp) or a planners' workbook (xlsx) as an instance folder with
    ready-to-run scenarios (docs/importing.md, docs/spreadsheets.md)."""


def _write_import(imported: Any, source: Path, output: Path) -> None:
    """Validate an import, write its folder atomically (refusing a foreign folder or the one holding ``source``),
    then read back what was written — the instance, and each scenario with its policy model — so a bad import
    fails loudly (exit 2)."""
    from pydantic import ValidationError

    from solver.data.instance import load_instance, pydantic_error, read_toml
    from solver.data.scenario import ScenarioFile, load_policy
    from solver.present.outputs import check_output_folder, write_folder

    inputs = [source]
    check_output_folder(output, inputs)
    imported.validate()
    files = imported.files()
    written = write_folder(output, files, inputs)
    inst = load_instance(written)
    for name in imported.scenarios:  # the scenario and its model (the instance, loaded above, is theirs: ".")
        path = written / name
        try:
            doc = ScenarioFile.model_validate(read_toml(path), strict=True)
        except ValidationError as exc:
            raise pydantic_error(path, exc) from None
        load_policy(doc.model, written, doc.overrides, source=path)
    n_s, n_p = len(inst.systems), len(inst.projects)
    click.echo(f"{source.name}: instance {inst.name} ({n_s} system{'s' if n_s != 1 else ''}, {n_p} "
               f"project{'s' if n_p != 1 else ''}, "
               f"{len(inst.years)} year{'s' if len(inst.years) != 1 else ''}"
               + (f", {len(inst.ballots)} ballot entries" if len(inst.ballots) else "") + ")")
    click.echo(f"Wrote {', '.join(files)} to {written}")
    click.echo(f"Solve with: {' | '.join(f'envelope solve {written / name}' for name in imported.scenarios)}")


@import_group.command("pb")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the instance and its scenarios.")
@_handle_errors
def import_pb(file: Path, output: Path) -> None:
    """A Pabulib participatory-budgeting file (.pb or .pb.gz) → a one-year instance (benefit = votes, ballots
    kept) with the scenarios greedy.toml and equal-shares.toml."""
    from solver.data.importers import read_pb

    _write_import(read_pb(file), file, output)


@import_group.command("mkp")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--index", type=click.IntRange(min=0), required=True,
              help="Problem number in the file, from 0.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the instance and its scenario.")
@_handle_errors
def import_mkp(file: Path, index: int, output: Path) -> None:
    """One problem of an OR-Library multidimensional knapsack file (mknap1.txt, mknapcb1.txt, ...) → an
    instance whose optimum is the problem's maximum total profit, with scenario.toml (gap 0)."""
    from solver.data.importers import read_mkp

    _write_import(read_mkp(file, index), file, output)


@import_group.command("xlsx")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the instance and its scenario.")
@click.option("--reference", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Instance folder whose organisations and systems a bids workbook without those sheets uses "
                   "(e.g. instances/england).")
@_handle_errors
def import_xlsx(file: Path, output: Path, reference: Path | None) -> None:
    """An instance workbook (.xlsx: the tables layout, or the bids layout planners use) → an instance folder
    with scenario.toml (need-first) (docs/spreadsheets.md)."""
    from solver.data.workbook import import_workbook
    from solver.present.outputs import check_output_folder

    check_output_folder(output, [file] + ([reference] if reference is not None else []))
    _write_import(import_workbook(file, reference), file, output)


@main.command("workbook")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The .xlsx file to write (replaces only a workbook Envelope wrote).")
@click.option("--layout", type=click.Choice(["tables", "bids"]), default=None,
              help="For an instance folder: one sheet per table (tables, the default) or the planners' bids sheet.")
@_handle_errors
def workbook(path: Path, output: Path, layout: str | None) -> None:
    """An instance folder (with instance.toml) or a result folder (of solve, an analysis, diff, compare or batch)
    as one .xlsx workbook (docs/spreadsheets.md)."""
    from solver.data.workbook import instance_workbook, is_envelope_workbook
    from solver.present.outputs import write_file

    if output.suffix.lower() != ".xlsx":
        raise InputError(output, "option -o: give a file name ending in .xlsx")
    if output.is_dir():
        raise InputError(output, "option -o: is a folder; give a file name ending in .xlsx")
    if (path / "instance.toml").is_file():
        written = write_file(output, instance_workbook(path, layout or "tables"), is_envelope_workbook,
                             "a workbook Envelope wrote", inputs=[path])
        click.echo(f"Wrote instance {path} as a workbook ({layout or 'tables'} layout) to {written}")
    elif (path / "summary.json").is_file() or (path / "manifest.json").is_file():
        from solver.present.results import read_result
        from solver.present.xlsx import result_workbook

        if layout is not None:
            raise InputError(None, "option --layout: applies to an instance folder, not to a result folder")
        written = write_file(output, result_workbook(read_result(path)), is_envelope_workbook,
                             "a workbook Envelope wrote", inputs=[path])
        click.echo(f"Wrote result {path} as a workbook to {written}")
    else:
        raise InputError(path, "is neither an instance folder (with instance.toml) nor a result folder (with "
                               "summary.json or manifest.json)")


@main.command()
@click.argument("paths", nargs=-1, type=str, metavar="PATHS_OR_GLOBS...")
@click.option("--sweep", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Sweep file: base scenarios × models, policy parameters, envelope scales and cuts, generated "
                   "instances (docs/batch.md).")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Results folder (runs.parquet, plans.parquet, manifest.json); re-running resumes it.")
@click.option("--workers", type=click.IntRange(1, 4096), default=None,
              help="Parallel single-threaded solves (default: the usable cores; 1 = serial).")
@click.option("--engine", type=click.Choice(["serial", "local", "dask"]), default="local", show_default=True,
              help="serial, a local process pool, or Dask distributed (pip install 'envelope-solver[dask]').")
@click.option("--scheduler", type=str, default=None, metavar="ADDRESS",
              help="Dask scheduler to use (e.g. tcp://10.0.0.5:8786); default: a LocalCluster on loopback.")
@click.option("--retry-failed", is_flag=True, help="Run scenarios recorded as failed again.")
@solver_options
@_handle_errors
def batch(paths: tuple[str, ...], sweep: Path | None, output: Path, workers: int | None, engine: str,
          scheduler: str | None, retry_failed: bool, **solver: Any) -> None:
    """Solve many scenarios — files, glob patterns and a sweep's cross product — on a local process pool or
    Dask, recording every result in one resumable Parquet store: re-running the same command skips what is
    done; a failed scenario is recorded with its message and the batch carries on (docs/batch.md)."""
    from solver.batch import expand, run_batch

    check_solver_options(**solver)
    if scheduler and engine != "dask":
        raise InputError(None, "option --scheduler: needs --engine dask")
    expansion = expand(paths, sweep, solver)
    given = {"--sweep": sweep, "-o": output, "--workers": workers, "--engine": engine, "--scheduler": scheduler,
             **{_SOLVER_FLAGS[k]: v for k, v in solver.items()}}
    command = ["envelope", "batch", *paths, *[str(x) for k, v in given.items() if v is not None for x in (k, v)]]
    report = run_batch(expansion, output, engine=engine, workers=workers, scheduler=scheduler,
                       retry_failed=retry_failed, command=command + ["--retry-failed"] * retry_failed)
    click.echo("\n".join(report.lines()))
    click.echo(f"Results in {report.folder}: runs.parquet, plans.parquet, manifest.json "
               f"(e.g. duckdb -c \"select status, count(*) from '{report.folder}/runs.parquet' group by status\")")


def _fraction(text: str, option: str) -> float:
    """'2%' or '0.02' → 0.02; anything else is a bad option (exit 2)."""
    try:
        value = float(text[:-1]) / 100 if text.strip().endswith("%") else float(text)
    except ValueError:
        raise InputError(None, f"option {option}: expected a fraction like 2% or 0.02 (got '{text}')") from None
    if not 0 <= value < 1:
        raise InputError(None, f"option {option}: must be between 0% and 100% (got '{text}')")
    return value


if __name__ == "__main__":  # pragma: no cover
    main()
