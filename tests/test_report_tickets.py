"""The report's ticket section (lthlib/report/tickets.py): tables and verdicts from planted tables."""

import pandas as pd
from conftest import imp_table

from lthlib.core.config import Config
from lthlib.report.tickets import baselines_table, beats, ticket_metrics, tickets_section, winning_verdict


def planted_baselines(reinit, pruning, level=2, spread=0.01):
    return pd.DataFrame([{"level": level, "baseline": baseline, "replicate": r, "fraction_remaining": 0.25,
                          "test_accuracy": accuracy + (spread if r else -spread), "test_loss": 1.0,
                          "test_examples": 10000}
                         for baseline, accuracy in (("random_reinit", reinit), ("random_pruning", pruning))
                         for r in range(2)])


def test_beats_needs_a_gap_larger_than_the_spread():
    assert beats(pd.Series([0.9, 0.92]), pd.Series([0.8, 0.82])) is True
    assert beats(pd.Series([0.8, 0.82]), pd.Series([0.9, 0.92])) is False
    assert beats(pd.Series([0.9, 0.92]), pd.Series([0.905, 0.915])) is None


def test_a_matching_ticket_beating_both_baselines_is_a_winning_ticket():
    imp = imp_table([0.5, 0.5], [0.88, 0.89, 0.88])  # level 2 matches the dense network (0.88 ± 0.014)
    verdict = baselines_table(imp, planted_baselines(0.80, 0.82)).apply(winning_verdict, axis=1)
    assert verdict.tolist() == ["winning ticket"]
    assert baselines_table(imp, planted_baselines(0.80, 0.95)).apply(winning_verdict, axis=1).tolist() == [
        "a baseline does better"]
    assert baselines_table(imp, planted_baselines(0.80, 0.875)).apply(winning_verdict, axis=1).tolist() == [
        "not resolved"]
    sparse = imp_table([0.5, 0.5], [0.88, 0.89, 0.80])  # level 2 is not matching
    assert baselines_table(sparse, planted_baselines(0.60, 0.62)).apply(winning_verdict, axis=1).tolist() == [
        "beats both baselines, not matching"]


def test_the_section_is_empty_without_tickets_and_shows_every_table_it_has(tmp_path):
    imp, empty = imp_table([0.5, 0.5], [0.88, 0.89, 0.88]), pd.DataFrame()
    assert tickets_section(Config(), imp, pd.DataFrame(columns=["level"]), empty, empty, empty, tmp_path) == ""
    few_shot = pd.DataFrame([{"fraction": 0.1, "examples": 100, "level": level, "replicate": r,
                              "fraction_remaining": 1.0, "train_steps": 40, "test_accuracy": 0.5 + 0.1 * level,
                              "test_examples": 100}
                             for level in (0, 2) for r in range(2)])
    section = tickets_section(Config(), imp, planted_baselines(0.80, 0.82), empty, few_shot, empty, tmp_path)
    assert "| 2 | 25.00 | 88.00 ± 1.41 | 80.00 ± 1.41 | 82.00 ± 1.41 | winning ticket |" in section
    assert "| ticket, level 2 (25.00% remaining) | 70.00 ± 0.00 |" in section
    assert "| dense network | 50.00 ± 0.00 |" in section
    assert ("for as many epochs of the subset as a level makes over the whole training set, the level's schedule "
            "compressed onto them (40 steps at 0.1)") in section
    assert "Linear probes" not in section and "Transfer" not in section
    assert (tmp_path / "figures" / "tickets_baselines.png").stat().st_size > 10_000


def test_ticket_metrics_give_each_level_its_ticket_baselines_and_last_block_probes():
    imp = imp_table([0.5, 0.5], [0.88, 0.89, 0.88])
    probes = pd.DataFrame([{"level": level, "network": network, "replicate": r, "block": block,
                            "probe_accuracy": 0.1 * block + (0.5 if network == "ticket" else 0.0)}
                           for level in (0, 2) for network in ("ticket", "permuted") for block in (1, 2)
                           for r in range(2)])
    metrics = ticket_metrics(planted_baselines(0.80, 0.82), probes, imp)["tickets"]
    assert list(metrics) == ["level_2"]
    assert metrics["level_2"] == {"ticket": 0.88, "random_pruning": 0.82, "random_reinit": 0.80,
                                  "probe_permuted": 0.2, "probe_ticket": 0.7}
    assert ticket_metrics(pd.DataFrame(columns=["level"]), probes, imp) == {}
