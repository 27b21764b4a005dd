import filecmp
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import imp_table

from lthlib.core.config import parse_config
from lthlib.core.errors import UserError
from lthlib.report.common import level_summary
from lthlib.report.stability import (
    epochs_text,
    first_stable_section,
    stable_epoch_table,
    write_convergence_report,
    write_stability_report,
)

ROOT = Path(__file__).resolve().parents[1]

BETAS = [0.0, 0.5, 1.0]


def stability_columns(frame: pd.DataFrame, forgetting: float) -> pd.DataFrame:
    """imp_table rows with the curves' columns: replicate 1 forgets 0.2 events per example more than replicate 0."""
    return frame.assign(train_auc=0.8, test_auc=0.7 + 0.01 * frame["replicate"],
                        forgetting_events=forgetting + 0.2 * frame["replicate"], forgetting_events_std=0.5,
                        unforgettable=0.6, never_learned=0.01)


def write_run(root, momentum, rewind, accuracies, barrier, first_stable, forgetting):
    folder = root / f"st-mu{momentum:g}-bs16-t{rewind}"
    folder.mkdir()
    (folder / "params.yaml").write_text(yaml.safe_dump({
        "train": {"momentum": momentum, "batch_size": 16, "steps": 24, "milestones": []},
        "pretrain": {"steps": rewind}, "pruning": {"levels": len(accuracies) - 1}, "el2n": {"steps": 8}}))
    summary = level_summary(stability_columns(imp_table([0.5] * (len(accuracies) - 1), accuracies), forgetting))
    summary.to_csv(folder / "imp_summary.csv", index=False)
    starts = sorted({0, rewind})
    pd.DataFrame([{"rewind_step": s, "level": 0, "replicate": r, "barrier": barrier + 0.001 * r}
                  for s in starts for r in range(2)]).to_csv(folder / "instability.csv", index=False)
    pd.DataFrame([{"rewind_step": s, "level": 0, "replicate": r, "beta": b, "error": 0.1 + barrier * (b == 0.5)}
                  for s in starts for r in range(2) for b in BETAS]).to_csv(folder / "instability_paths.csv",
                                                                            index=False)
    pd.DataFrame([{"init": i, "first_stable_step": step, "last_unstable_step": None,
                   "first_stable_epoch": None if step is None else step / 6, "probes": 2, "reused": 0,
                   "examples": 1000} for i, step in enumerate(first_stable)]).to_csv(folder / "first_stable.csv",
                                                                                    index=False)


def test_the_study_report_tells_which_configuration_was_most_stable_and_whether_it_made_better_tickets(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    # momentum 0: stable copies, fewer forgetting events, the better sparsest ticket; momentum 0.9: the reverse
    write_run(runs, 0.0, 0, [0.88, 0.88, 0.86], barrier=0.005, first_stable=[0, 6], forgetting=1.0)
    write_run(runs, 0.0, 2, [0.88, 0.88, 0.87], barrier=0.002, first_stable=[0, 0], forgetting=1.0)
    write_run(runs, 0.9, 0, [0.90, 0.87, 0.80], barrier=0.10, first_stable=[12, None], forgetting=3.0)
    write_run(runs, 0.9, 2, [0.90, 0.88, 0.84], barrier=0.03, first_stable=[6, 12], forgetting=3.0)
    report = write_stability_report(runs, tmp_path / "out").read_text()
    assert "Most stable to SGD noise from initialisation (lowest barrier between dense copies): **mu0-bs16** (0.55%)" \
        in report
    assert "fewest forgetting events: **mu0-bs16**" in report
    assert "best ticket at the sparsest common level (2) came from **mu0-bs16** (86.00%): stability predicted" in report
    assert "Spearman correlation of barrier and ticket accuracy over 2 configurations: -1.00" in report
    # Table 1 (dense, from initialisation): forgetting over replicates and the std over examples
    assert ("| mu0.9-bs16 | 90.00 ± 1.41 | 3.10 ± 0.50 | 60.00 | 1.00 | 0.8000 ± 0.0000 | 0.7050 ± 0.0071 |"
            in report)
    # Table 6 from the runs without late rewinding; an initialisation that never became stable is said so
    assert "| mu0-bs16 | 0.50 ± 0.50 | 2 |" in report and "| mu0.9-bs16 | 2.00 (1 of 2 never stable) | 2 |" in report
    assert "| mu0.9-bs16 | initialisation | 10.05 ± 0.07 |" in report
    assert "| mu0.9-bs16 | step 2 | 3.05 ± 0.07 |" in report  # the late-rewinding run's copies from t_r
    # Table 2: every configuration with and without late rewinding, a column per sparsity
    assert "| mu0.9-bs16 | t_r=2 | 90.00 ± 1.41 | 88.00 ± 1.41 | 84.00 ± 1.41 |" in report
    # its readings (Sec. 4.1-4.2): the unstable configuration's dense network ahead, the stable one's deepest ticket
    assert ("**Table 2, 0.00% column (the more stable configuration's dense network is the less accurate): "
            "reproduced** (1 of 1 comparisons") in report
    assert ("- level 2 (75.00% sparse): 86.00 ± 1.41 for mu0-bs16 (barrier 0.55%) against 80.00 ± 1.41 for "
            "mu0.9-bs16 (barrier 10.05%): as the paper.") in report
    assert "the more stable one's at the deepest): inconclusive** (1 of 2 comparisons" in report  # level 1: 88 vs 87
    assert ("- mu0.9-bs16 from step 2 (barrier 3.05%) against mu0.9-bs16 (barrier 10.05%): ahead at 1 and behind at 0 "
            "of 2 sparsities: not resolved.") in report
    assert (tmp_path / "out" / "stability_paths.png").stat().st_size > 10_000


@pytest.mark.parametrize("late, verdict", [([0.90, 0.90, 0.90, 0.90, 0.86], "reproduced"),
                                           ([0.90, 0.90, 0.90, 0.86, 0.86], "inconclusive"),
                                           ([0.90, 0.90, 0.90, 0.82, 0.82], "not reproduced")])
def test_late_rewinding_must_lead_at_most_sparsities_and_loses_the_claim_when_behind_at_half(tmp_path, late, verdict):
    write_run(tmp_path, 0.9, 0, [0.90, 0.86, 0.86, 0.86, 0.86], barrier=0.10, first_stable=[12], forgetting=3.0)
    write_run(tmp_path, 0.9, 6, late, barrier=0.005, first_stable=[12], forgetting=3.0)
    report = write_stability_report(tmp_path, tmp_path / "out").read_text()
    assert f"**Table 2 (late rewinding raises the tickets' accuracy at most sparsities): {verdict}** (" in report
    assert "Table 2 (without late rewinding, " in report and "no comparison (no such pair" in report  # one config


def test_table_2_needs_two_sparse_levels_for_the_lowest_and_the_deepest_and_one_for_late_rewinding(tmp_path):
    write_run(tmp_path, 0.0, 0, [0.88, 0.88], barrier=0.005, first_stable=[0], forgetting=1.0)
    write_run(tmp_path, 0.9, 0, [0.90, 0.87], barrier=0.10, first_stable=[12], forgetting=3.0)
    write_run(tmp_path, 0.9, 6, [0.90], barrier=0.005, first_stable=[12], forgetting=3.0)  # dense only
    report = write_stability_report(tmp_path, tmp_path / "out").read_text()
    assert "is the less accurate): reproduced** (1 of 1 comparisons" in report  # 90 against 88 ± 1.41
    assert "the more stable one's at the deepest): no comparison" in report  # one sparse level: lowest = deepest
    assert "at most sparsities): no comparison" in report


def test_first_stable_epochs_are_summarised_with_the_searches_that_found_none():
    assert epochs_text(pd.Series([1.0, 3.0])) == "2.00 ± 1.00"
    assert epochs_text(pd.Series([None, None])) == "never stable"


def test_the_run_report_section_lists_every_initialisation(tmp_path):
    config = parse_config({"replicates": 2, "instability": {"search_every": 4, "search_copies": 2}})
    first = pd.DataFrame({"init": [0, 1], "first_stable_step": [4, None], "last_unstable_step": [0, 24],
                          "first_stable_epoch": [0.5, None], "probes": [3, 1], "examples": [10000, 10000],
                          "reused": [0, 0]})
    paths = pd.DataFrame([{"rewind_step": 0, "level": 0, "replicate": r, "beta": b, "error": 0.1}
                          for r in range(2) for b in BETAS])
    section = first_stable_section(config, first, paths, tmp_path)
    assert "First stable epoch over 2 initialisations: **0.50 (1 of 2 never stable)** (caution:" in section
    assert "| 0 | 4 | 0 | 0.50 | 3 | 0 |" in section and "| 1 | - | 24 | - | 1 | 0 |" in section
    assert (tmp_path / "figures" / "instability_paths.png").exists()


def test_a_better_ticket_within_one_std_of_the_most_stable_ones_is_not_a_resolved_verdict(tmp_path):
    write_run(tmp_path, 0.0, 0, [0.88, 0.88, 0.855], barrier=0.005, first_stable=[0], forgetting=1.0)
    write_run(tmp_path, 0.9, 0, [0.90, 0.87, 0.86], barrier=0.10, first_stable=[12], forgetting=3.0)
    report = write_stability_report(tmp_path, tmp_path / "out").read_text()
    assert ("came from **mu0.9-bs16** (86.00%): stability did not predict ticket quality on this run (but the most "
            "stable configuration's ticket is only 0.50 points behind, within one std over replicates: not resolved)"
            in report)


def write_ticket_tables(folder, probe_accuracy, few_shot_accuracy):
    """Planted ticket-stage tables of one exported run (levels 1 and 2; two replicates, ± 0.01)."""
    rows = lambda **keys: [dict(keys, replicate=r, delta=0.01 * (1 if r else -1)) for r in range(2)]  # noqa: E731
    probes = pd.DataFrame([dict(row, probe_accuracy=probe_accuracy + row.pop("delta")) for level in (0, 1, 2)
                           for network in (("ticket",) if level == 0 else ("ticket", "permuted"))
                           for block in (1, 2) for row in rows(level=level, network=network, block=block)])
    probes.assign(module="act", test_examples=100).to_csv(folder / "probes.csv", index=False)
    few_shot = pd.DataFrame([dict(row, test_accuracy=few_shot_accuracy + row.pop("delta")) for level in (0, 2)
                             for fraction in (0.01, 0.1) for row in rows(level=level, fraction=fraction)])
    few_shot.assign(examples=10, fraction_remaining=0.25, train_steps=20, test_examples=100).to_csv(
        folder / "few_shot.csv", index=False)
    baselines = pd.DataFrame([dict(row, test_accuracy=0.5 + row.pop("delta")) for level in (2,)
                              for baseline in ("random_reinit", "random_pruning")
                              for row in rows(level=level, baseline=baseline)])
    baselines.assign(fraction_remaining=0.25, test_loss=1.0, test_examples=100).to_csv(folder / "baselines.csv",
                                                                                       index=False)


def test_the_study_report_compares_probes_few_shot_and_baselines_across_configurations(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    write_run(runs, 0.0, 0, [0.88, 0.88, 0.86], barrier=0.005, first_stable=[0, 6], forgetting=1.0)
    write_run(runs, 0.9, 0, [0.90, 0.87, 0.80], barrier=0.10, first_stable=[12, None], forgetting=3.0)
    write_ticket_tables(runs / "st-mu0-bs16-t0", probe_accuracy=0.8, few_shot_accuracy=0.7)
    write_ticket_tables(runs / "st-mu0.9-bs16-t0", probe_accuracy=0.3, few_shot_accuracy=0.4)
    report = write_stability_report(runs, tmp_path / "out").read_text()
    # Table 3: a column per sparsity and block (level 1: 50% remaining, level 2: 25%), ticket and permuted rows
    assert ("| configuration | rewinding | network | 50.00% sparse block 1 | 50.00% sparse block 2 | "
            "75.00% sparse block 1 | 75.00% sparse block 2 |") in report
    assert "| mu0-bs16 | no | ticket | 80.00 ± 1.41 | 80.00 ± 1.41 | 80.00 ± 1.41 | 80.00 ± 1.41 |" in report
    assert "| mu0.9-bs16 | no | permuted mask | 30.00 ± 1.41 |" in report
    # Table 4: tickets and the dense network per subset size
    assert "| mu0-bs16 | no | ticket, 75.00% sparse | 70.00 ± 1.41 | 70.00 ± 1.41 |" in report
    assert "| mu0.9-bs16 | no | dense network | 40.00 ± 1.41 | 40.00 ± 1.41 |" in report
    # the baselines beside the ticket itself (level 2 of imp_table: 86.00 ± 1.41 for momentum 0)
    assert "| mu0-bs16 | no | 75.00% sparse | 86.00 ± 1.41 | 50.00 ± 1.41 | 50.00 ± 1.41 |" in report
    assert "Table 5" not in report  # no run transferred
    # Sec. 5: the stable configuration's tickets probe and few-shot better (barrier 0.5% against an unstable 10%)
    assert ("- probe accuracy, level 1: 80.00 ± 1.41 for mu0-bs16 (barrier 0.55%) against 30.00 ± 1.41 for "
            "mu0.9-bs16 (barrier 10.05%): as the paper.") in report
    assert "- few-shot accuracy, level 2, 10% of the data (20 and 20 training steps): 70.00 ± 1.41 for mu0-bs16 " \
        in report
    assert ("**Table 3 (the tickets of a more stable configuration are better feature extractors): reproduced** (2 of "
            "2 comparisons") in report
    assert "**Table 4 (the tickets of a more stable configuration train better on few examples): reproduced**" in report
    assert "Table 3 (late rewinding makes tickets better feature extractors): no comparison" in report  # no such run


@pytest.mark.parametrize("late_probes, verdict", [(0.9, "reproduced** (2 of 2 comparisons resolved the paper's way"),
                                                  (0.1, "not reproduced** (0 of 2 comparisons resolved the paper's "
                                                        "way, 2 the other way")])
def test_tickets_rewound_late_to_a_stable_point_are_compared_with_their_unstable_start(tmp_path, late_probes,
                                                                                       verdict):
    runs = tmp_path / "runs"
    runs.mkdir()
    for momentum, rewind, barrier, probes in ((0.0, 0, 0.005, 0.8), (0.9, 0, 0.10, 0.3), (0.9, 6, 0.005, late_probes)):
        write_run(runs, momentum, rewind, [0.88, 0.88, 0.86], barrier=barrier, first_stable=[0, 6], forgetting=1.0)
        write_ticket_tables(runs / f"st-mu{momentum:g}-bs16-t{rewind}", probe_accuracy=probes, few_shot_accuracy=0.5)
    report = write_stability_report(runs, tmp_path / "out").read_text()
    assert ("for mu0.9-bs16 from step 6 (barrier 0.55%) against 30.00 ± 1.41 for mu0.9-bs16 (barrier 10.05%)"
            in report)
    assert "**Table 3 (late rewinding makes tickets better feature extractors): " + verdict in report
    assert "**Table 3 (the tickets of a more stable configuration are better feature extractors): reproduced" in report
    assert "**Table 4 (late rewinding makes tickets train better on few examples): inconclusive** (0 of 2" \
        in report  # equal few-shot accuracies: no comparison resolved


def test_table_4_is_read_again_from_a_few_shot_variant_of_the_same_runs(tmp_path):
    """Few-shot tables under other settings (`<run>_few_shot.csv`, e.g. more epochs) get their own Table 4 verdicts;
    the runs' own few-shot tables keep theirs."""
    runs, variant = tmp_path / "runs", tmp_path / "epochs50"
    runs.mkdir()
    variant.mkdir()
    for momentum, rewind, barrier, few_shot in ((0.0, 0, 0.005, 0.5), (0.9, 0, 0.10, 0.5), (0.9, 6, 0.005, 0.8)):
        name = f"st-mu{momentum:g}-bs16-t{rewind}"
        write_run(runs, momentum, rewind, [0.88, 0.88, 0.86], barrier=barrier, first_stable=[0, 6], forgetting=1.0)
        write_ticket_tables(runs / name, probe_accuracy=0.5, few_shot_accuracy=0.5)
        write_ticket_tables(variant, probe_accuracy=0.5, few_shot_accuracy=few_shot)
        (variant / "few_shot.csv").rename(variant / f"{name}_few_shot.csv")
    report = write_stability_report(runs, tmp_path / "out", few_shot_variant=variant).read_text()
    main, again = report.split(f"## Table 4 in words, few-shot tables of `{variant}`\n")
    assert "**Table 4 (late rewinding makes tickets train better on few examples): inconclusive** (0 of 2" in main
    assert "**Table 4 (late rewinding makes tickets train better on few examples): reproduced** (2 of 2" in again
    assert "80.00 ± 1.41 for mu0.9-bs16 from step 6 (barrier 0.55%) against 50.00 ± 1.41" in again
    assert "Table 3 (" not in again  # the variant holds few-shot tables alone
    with pytest.raises(UserError, match=f"few-shot variant {tmp_path}: no <run>_few_shot.csv there"):
        write_stability_report(runs, tmp_path / "out", few_shot_variant=tmp_path)


def test_among_stable_runs_the_ticket_claims_have_nothing_to_compare(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    for momentum, barrier, probes in ((0.0, 0.005, 0.8), (0.9, 0.015, 0.3)):  # both below the 2% threshold
        write_run(runs, momentum, 0, [0.88, 0.88, 0.86], barrier=barrier, first_stable=[0, 6], forgetting=1.0)
        write_ticket_tables(runs / f"st-mu{momentum:g}-bs16-t0", probe_accuracy=probes, few_shot_accuracy=0.5)
    report = write_stability_report(runs, tmp_path / "out").read_text()
    assert "## Tables 3-4 in words\nEvery run is stable from the point its tickets are rewound to" in report
    assert "## Table 2 in words\nNo two runs differ in stability with the less stable one unstable" in report
    assert "Table 3 (" not in report


def write_dense_run(root, momentum, batch, forgetting, train_auc, test_auc):
    """A run of the dense network alone: level 0 of two replicates (values ± 0.01), as imp_summary.csv."""
    folder = root / f"t1-mu{momentum:g}-bs{batch}"
    folder.mkdir()
    (folder / "params.yaml").write_text(yaml.safe_dump({
        "train": {"momentum": momentum, "batch_size": batch, "steps": 24, "milestones": [], "curve_steps": 0},
        "pretrain": {"steps": 0}, "pruning": {"levels": 0}, "el2n": {"steps": 8}}))
    table = stability_columns(imp_table([], [0.85]), forgetting).assign(
        forgetting_events=[forgetting - 0.01, forgetting + 0.01],
        train_auc=[train_auc - 0.01, train_auc + 0.01], test_auc=[test_auc - 0.01, test_auc + 0.01])
    level_summary(table).to_csv(folder / "imp_summary.csv", index=False)


def write_copies(folder, barriers):
    """instability.csv of two dense copies from initialisation per replicate, one barrier each."""
    pd.DataFrame({"rewind_step": 0, "level": 0, "replicate": range(len(barriers)), "barrier": barriers}).to_csv(
        folder / "instability.csv", index=False)


def write_searches(folder, epochs, steps_per_epoch=10):
    """first_stable.csv of searches that ended at `epochs` (None: never stable), each one step above the last
    step it found unstable (a search to single steps)."""
    steps = [None if e is None else round(e * steps_per_epoch) for e in epochs]
    pd.DataFrame({"init": range(len(epochs)), "first_stable_step": steps,
                  "last_unstable_step": [None if step in (None, 0) else step - 1 for step in steps],
                  "first_stable_epoch": epochs}).to_csv(folder / "first_stable.csv", index=False)


@pytest.mark.parametrize("with_momentum, verdict", [
    ((0.30, 0.90, 0.91), "reproduced** (6 of 6 comparisons resolved the paper's way, 0 the other way;"),
    ((0.21, 0.90, 0.91), "inconclusive** (4 of 6 comparisons resolved the paper's way, 0 the other way;"),
    ((0.10, 0.90, 0.91), "not reproduced** (4 of 6 comparisons resolved the paper's way, 2 the other way;"),
])
def test_table_1_alone_checks_the_papers_reading_of_momentum_at_each_batch_size(tmp_path, with_momentum, verdict):
    runs = tmp_path / "runs"
    runs.mkdir()
    for batch in (16, 64):  # without momentum: 0.2 forgetting events a example, AUC 0.95 (train) and 0.96 (test)
        write_dense_run(runs, 0.0, batch, 0.2, 0.95, 0.96)
        write_dense_run(runs, 0.9, batch, *with_momentum)
    report = write_convergence_report(runs, tmp_path / "out").read_text()
    assert "| mu0.9-bs64 | 85.00 ± 1.41 | " in report and "| mu0-bs16 |" in report
    assert "- batch 16: train AUC 0.9000 ± 0.0141 with momentum 0.9, 0.9500 ± 0.0141 with 0: as the paper." in report
    assert ("**Table 1 (momentum: more forgetting events, slower convergence of train and test accuracy): "
            + verdict) in report


def test_table_1_with_stability_compares_barrier_and_first_stable_epoch_by_momentum_and_by_batch(tmp_path):
    """Runs of `--dense-only --stability`: one search of mu 0.9 / batch 64 never found a stable step, so its mean
    epoch is undefined and both comparisons that need it are not resolved."""
    runs = tmp_path / "runs"
    runs.mkdir()
    planted = {(0.0, 16): ([0.03, 0.04], [0.5, 0.5]), (0.9, 16): ([0.20, 0.30], [2.0, 2.5]),
               (0.0, 64): ([0.01, 0.012], [0.0, 0.0]), (0.9, 64): ([0.05, 0.06], [1.0, None])}
    for (momentum, batch), (barriers, epochs) in planted.items():
        write_dense_run(runs, momentum, batch, 0.2, 0.95, 0.96)
        folder = runs / f"t1-mu{momentum:g}-bs{batch}"
        write_copies(folder, barriers)
        write_searches(folder, epochs)
    report = write_convergence_report(runs, tmp_path / "out").read_text()
    assert "| mu0.9-bs16 | 25.00 ± 7.07 | 3 | an epoch | 2 | 2.25 ± 0.25 | 2.15 |" in report
    assert "| mu0.9-bs64 | 5.50 ± 0.71 | 3 | an epoch | 2 | 1.00 (1 of 2 never stable) | 0.90 |" in report
    assert ("- batch 16: first stable epoch 2.25 ± 0.25 with momentum 0.9, 0.50 ± 0.00 with 0: as the paper."
            in report)
    assert ("- momentum 0: error barrier from initialisation 1.10 ± 0.14 % with batch 64, 3.50 ± 0.71 % with 16: "
            "as the paper." in report)
    assert ("- momentum 0.9: first stable epoch undefined with batch 64, 2.25 ± 0.25 with 16: "
            "not resolved." in report)
    assert "later first stable epoch): inconclusive** (3 of 4 comparisons resolved the paper's way, 0" in report
    assert "earlier first stable epoch): inconclusive** (3 of 4 comparisons resolved the paper's way, 0" in report
    (runs / "t1-mu0-bs16" / "first_stable.csv").unlink()  # a run whose search did not finish
    report = write_convergence_report(runs, tmp_path / "out").read_text()
    assert "| mu0-bs16 | 3.50 ± 0.71 | - | - | - | not searched | - |" in report
    assert "- batch 16: first stable epoch 2.25 ± 0.25 with momentum 0.9, undefined " in report


def test_three_batch_sizes_are_compared_as_neighbours_so_a_reversal_between_two_of_them_shows(tmp_path):
    """The paper's claim is monotonic in the batch size: 16 against 64 and 64 against 256, not the extremes alone,
    which here would hide that batch 16 is stable earlier than 64."""
    runs = tmp_path / "runs"
    runs.mkdir()
    planted = {16: ([0.30, 0.32], [0.3, 0.3]), 64: ([0.20, 0.22], [1.0, 1.2]), 256: ([0.05, 0.06], [0.5, 0.6])}
    for batch, (barriers, epochs) in planted.items():
        write_dense_run(runs, 0.9, batch, 0.2, 0.95, 0.96)
        folder = runs / f"t1-mu0.9-bs{batch}"
        write_copies(folder, barriers)
        write_searches(folder, epochs)
    report = write_convergence_report(runs, tmp_path / "out").read_text()
    assert ("- momentum 0.9: first stable epoch 1.10 ± 0.10 with batch 64, 0.30 ± 0.00 with 16: the opposite of the "
            "paper." in report)
    assert "- momentum 0.9: first stable epoch 0.55 ± 0.05 with batch 256, 1.10 ± 0.10 with 64: as the paper." in report
    assert "with batch 256, 0.30 ± 0.00 with 16" not in report
    assert ("earlier first stable epoch): not reproduced** (3 of 4 comparisons resolved the paper's way, 1 the other "
            "way;" in report)
    assert "No momentum was run with two values of batch size" not in report


@pytest.mark.parametrize("earlier_step, verdict", [(19, "as the paper"), (20, "not resolved")])
def test_first_stable_epochs_are_apart_only_beyond_the_bisections_brackets(tmp_path, earlier_step, verdict):
    """Every initialisation in the same bracket gives a std of 0, which alone would resolve any gap: candidates
    19 steps apart leave momentum 0.9 stable at 38 (unstable at 19), later than momentum 0 only where that one is
    stable by step 19."""
    runs = tmp_path / "runs"
    runs.mkdir()
    for momentum, step, last_unstable in ((0.0, earlier_step, 0), (0.9, 38, 19)):
        write_dense_run(runs, momentum, 16, 0.2, 0.95, 0.96)
        folder = runs / f"t1-mu{momentum:g}-bs16"
        write_copies(folder, [0.05, 0.06])
        pd.DataFrame({"init": [0, 1], "first_stable_step": step, "last_unstable_step": last_unstable,
                      "first_stable_epoch": step / 39}).to_csv(folder / "first_stable.csv", index=False)
    report = write_convergence_report(runs, tmp_path / "out").read_text()
    assert "| mu0.9-bs16 | 5.50 ± 0.71 | 3 | an epoch | 2 | 0.97 ± 0.00 | 0.49 |" in report
    assert f"- batch 16: first stable epoch 0.97 ± 0.00 with momentum 0.9, {earlier_step / 39:.2f} ± 0.00 with 0: " \
           f"{verdict}." in report


def test_a_refined_bisection_replaces_the_coarser_search_and_the_table_names_its_spacing(tmp_path):
    """`scripts/regime_search.py first-stable --every STEPS` writes first_stable_every<STEPS>.csv beside a run's
    search: both configurations are stable by step 19 of the coarser one (not resolved), and the finest refinement
    (every 3 steps, not every 9) finds momentum 0 stable at 3 and momentum 0.9 only at 15. A search with more noise
    copies per initialisation (`--copies N`: first_stable_every<STEPS>_copies<N>.csv) replaces a finer one with the
    run's copies. The probes beside a refinement are not a search."""
    runs = tmp_path / "runs"
    runs.mkdir()
    refined = {0.0: {3: (3, 0), 9: (9, 0)}, 0.9: {3: (15, 12), 9: (18, 9)}}
    for momentum, searches in refined.items():
        write_dense_run(runs, momentum, 16, 0.2, 0.95, 0.96)
        folder = runs / f"t1-mu{momentum:g}-bs16"
        write_copies(folder, [0.05, 0.06])
        for every, (step, last_unstable) in {19: (19, 0), **searches}.items():
            name = "first_stable" if every == 19 else f"first_stable_every{every}"
            pd.DataFrame({"init": [0, 1], "first_stable_step": step, "last_unstable_step": last_unstable,
                          "first_stable_epoch": step / 39}).to_csv(folder / f"{name}.csv", index=False)
        pd.DataFrame({"init": [0], "step": [3], "barrier": [0.01]}).to_csv(folder / "first_stable_every3_probes.csv",
                                                                          index=False)
    report = write_convergence_report(runs, tmp_path / "out").read_text()
    assert "| mu0.9-bs16 | 5.50 ± 0.71 | 3 | 3 steps | 2 | 0.38 ± 0.00 | 0.31 |" in report
    assert "- batch 16: first stable epoch 0.38 ± 0.00 with momentum 0.9, 0.08 ± 0.00 with 0: as the paper." in report
    for folder in runs.iterdir():  # five copies, candidates every 9 steps: stable at 9 with momentum 0.9, unstable at 0
        pd.DataFrame({"init": [0, 1], "first_stable_step": 9, "last_unstable_step": 0,
                      "first_stable_epoch": 9 / 39}).to_csv(folder / "first_stable_every9_copies5.csv", index=False)
        shutil.copy(folder / "first_stable_every3_probes.csv", folder / "first_stable_every9_copies5_probes.csv")
    report = write_convergence_report(runs, tmp_path / "out").read_text()
    assert "| mu0.9-bs16 | 5.50 ± 0.71 | 5 | 9 steps | 2 | 0.23 ± 0.00 | 0.00 |" in report
    assert "- batch 16: first stable epoch 0.23 ± 0.00 with momentum 0.9, 0.23 ± 0.00 with 0: not resolved." in report
    for folder in runs.iterdir():  # without the refinements: the search every `instability.search_every` steps
        for path in folder.glob("first_stable_every*"):
            path.unlink()
        params = yaml.safe_load((folder / "params.yaml").read_text())
        (folder / "params.yaml").write_text(yaml.safe_dump({**params, "instability": {"search_every": 19}}))
    report = write_convergence_report(runs, tmp_path / "out").read_text()
    assert "| mu0.9-bs16 | 5.50 ± 0.71 | 3 | 19 steps | 2 | 0.49 ± 0.00 | 0.00 |" in report
    assert "- batch 16: first stable epoch 0.49 ± 0.00 with momentum 0.9, 0.49 ± 0.00 with 0: not resolved." in report


# the default; unstable_resnet; unstable_resnet at lr 0.4 with its tickets; the last two with a few-shot variant
@pytest.mark.parametrize("study, variant", [("reports/stability", None),
                                            ("reports/regime/stability", "few_shot_epochs50"),
                                            ("reports/regime/stability/lr0.4/tickets", "few_shot_epochs50")])
def test_the_committed_study_regenerates_byte_for_byte_from_its_exported_runs(tmp_path, monkeypatch, study, variant):
    monkeypatch.chdir(ROOT)  # the report names its runs' folder as given
    write_stability_report(f"{study}/runs", tmp_path, variant and f"{study}/{variant}")
    assert filecmp.cmp(tmp_path / "stability.md", ROOT / study / "stability.md", shallow=False)


@pytest.mark.parametrize("study", ["table1", "epochs20", "lr0.4"])  # 5 epochs; 20, where batch 512 trains; lr 0.4
def test_the_regimes_committed_table_1_regenerates_byte_for_byte_from_its_exported_runs(tmp_path, monkeypatch, study):
    monkeypatch.chdir(ROOT)  # the report names its runs' folder as given
    write_convergence_report(f"reports/regime/stability/{study}/runs", tmp_path)
    assert filecmp.cmp(tmp_path / "table1.md", ROOT / f"reports/regime/stability/{study}/table1.md", shallow=False)


def test_table_6_counts_each_configurations_own_initialisations():
    """A search over more initialisations than the grid's replicates (`first-stable --initialisations`) says so."""
    first_stable = pd.DataFrame({"configuration": ["a"] * 3 + ["b"] * 2, "t_r": [0, 0, 0, 0, 0],
                                 "first_stable_epoch": [0.25, 0.5, None, 1.0, 1.0], "candidates_every": "13 steps",
                                 "search_copies": [2, 2, 2, 3, 3]})
    table = stable_epoch_table(first_stable)
    assert table["initialisations"].to_dict() == {"a": 3, "b": 2}
    assert table["copies"].to_dict() == {"a": "2", "b": "3"}
    assert table.loc["a", "first stable epoch"] == "0.38 ± 0.12 (1 of 3 never stable)"
