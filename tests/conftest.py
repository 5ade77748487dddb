"""Shared fixtures: the tiny instance, scenario builders and the installed backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from solver.backends import available_backends
from solver.data.scenario import Scenario, load_scenario

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "instances" / "tiny"


def tiny_scenario(tmp_path: Path, overrides: str = "", model: str = "need-first", extra: str = "") -> Scenario:
    """A scenario on the tiny instance with a TOML overrides block."""
    text = f'instance = "{TINY.as_posix()}"\nmodel = "{model}"\n{extra}\n[solver]\nmip_gap = 0\n'
    if overrides:
        text += f"\n[overrides]\n{overrides}\n"
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return load_scenario(path)


@pytest.fixture(scope="session")
def backends() -> list[str]:
    """Backends installed here."""
    return available_backends()


@pytest.fixture(autouse=True)
def _fresh_base_solves() -> None:
    """Each test starts without base solves cached by an earlier one (a monkeypatched backend must
    not receive another test's plan)."""
    from solver.analyses.engine import clear_base_cache

    clear_base_cache()


#: The slowest tests of the fast lane (1-4 s each, measured 2026-12-01 with --durations), run in the slow lane
#: only, so that ``pytest -m "not slow"`` stays under a minute; each has cheaper siblings in the fast lane.
SLOW_LANE_ONLY = frozenset({
    "test_report_browser.py::test_hostile_names_never_run",
    "test_report.py::test_report_refuses_what_it_does_not_own_and_names_bad_folders",
    "test_report.py::test_spend_and_categories_add_up_with_the_fee_paid_by_the_centre",
    "test_workbook.py::test_any_text_name_survives_instance_workbook_instance",
    "test_report.py::test_a_plan_funding_nothing_a_rule_based_plan_and_unique_section_ids",
    "test_browser_harness.py::test_requests_are_recorded_and_aborted_and_data_urls_kept_apart",
    "test_browser_harness.py::test_a_closed_browser_leaves_no_process",
    "test_browser_harness.py::test_content_is_not_blank_and_the_screenshot_is_the_full_page",
    "test_browser_harness.py::test_blank_page_is_blank",
    "test_browser_harness.py::test_uncaught_exception_is_reported",
    "test_output_kills.py::test_kill_while_writing_and_while_removing_the_previous_output",
    "test_thresholds.py::test_selection_excludes_mandatory_committed_and_blocked",
    "test_properties.py::test_every_backend_agrees_with_highs_fast",
    "test_sensitivity_cli.py::test_command_runs_and_writes[thresholds]",
    "test_backends.py::test_backends_agree_property_fast",
    "test_input_limits.py::test_vectorised_checks_agree_with_the_row_model",
    "test_analysis_interrupts.py::test_infeasible_thresholds_probes_run_no_elastic_solve",
    "test_backend_agreement.py::test_all_backends_agree_on_tiny[money-moves]",
    "test_backend_agreement.py::test_all_backends_agree_on_tiny[deviation-spend]",
    "test_oracle_backends.py::test_backend_matches_the_oracle_fast[scip]",
    "test_exact_money.py::test_exact_money_fast_slice[scip]",
    "test_robust.py::test_worker_count_does_not_change_results",
    "test_value.py::test_an_undetermined_difference_is_resolved_tighter",
    "test_ladder.py::test_cuts_in_gbpm_on_one_pot_and_parallel_chains",
    "test_thresholds.py::test_a_stage_that_stops_at_its_time_limit_is_not_tried_again",
    "test_alternatives.py::test_first_alternative_is_the_farthest_plan_within_the_loss",
    "test_thresholds.py::test_forced_in_and_out_probes_match_brute_force",
    "test_sensitivity_cli.py::test_command_runs_and_writes[value]",
    "test_exact_money.py::test_exact_money_fast_slice[cpsat]",
    "test_alternatives.py::test_a_round_is_within_its_mga_gap_of_the_farthest_plan[0.0]",
    "test_oracle_backends.py::test_backend_matches_the_oracle_fast[cpsat]",
    "test_faults.py::test_ctrl_c_during_highs_solve_returns_the_incumbent",
    "test_backends.py::test_backends_coexist_in_one_process",
    "test_backends.py::test_optimal_within_loose_gap",
    "test_engine.py::test_the_ladder_top_level_is_the_base_solve",
    "test_alternatives.py::test_same_seed_identical_outputs",
    "test_robust.py::test_same_seed_identical_outputs_and_seed_matters",
    "test_properties.py::test_cpsat_solves_fair_share_slack_on_the_grid[floor-penalty-on-grid]",
    "test_properties.py::test_cpsat_solves_fair_share_slack_on_the_grid[deviation-on-grid]",
    "test_reasons.py::test_settle_is_exact",
    "test_signals.py::test_sigkill_during_a_cbc_solve_leaves_no_child_and_no_file",
    "test_backends.py::test_infeasible[lp]",
    "test_backends.py::test_matches_brute_force[ranged-equality]",
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move ``SLOW_LANE_ONLY`` to the slow lane."""
    for item in items:
        if item.nodeid.rsplit("/", 1)[-1] in SLOW_LANE_ONLY:
            item.add_marker(pytest.mark.slow)
