from itertools import combinations

import pandas as pd
import pytest
from conftest import random_states, tiny_dataset

from lthlib.analyses import stability
from lthlib.analyses.instability import DenseRun
from lthlib.analyses.stability import candidate_steps, first_stable_step, search_first_stable_steps
from lthlib.core.config import InterpolationConfig, TrainConfig
from lthlib.core.train import replicate_seeds


def planted(threshold: int, calls: list):
    def is_stable(step: int) -> bool:
        calls.append(step)
        return step >= threshold
    return is_stable


@pytest.mark.parametrize("threshold", [0, 1, 37, 117, 199, 200])
def test_the_binary_search_finds_a_planted_threshold_with_the_promised_probes(threshold):
    """Appendix B: 201 candidate epochs (0..200) need ceil(log2 200) + 1 = 9 probes."""
    calls = []
    first, last_unstable = first_stable_step(planted(threshold, calls), range(201), probes=9)
    assert first == threshold and last_unstable == (threshold - 1 if threshold else None)
    assert len(calls) <= 9 and len(set(calls)) == len(calls)  # no step probed twice


def test_the_search_reuses_every_verdict_it_already_has():
    known, calls = {}, []
    first_stable_step(planted(37, calls), range(201), probes=9, known=known)
    probed = len(calls)
    assert first_stable_step(planted(37, calls), range(201), probes=9, known=known) == (37, 36)
    assert len(calls) == probed  # nothing re-trained
    # a coarse search first (3 probes: an upper bound), refined later from the same cache
    known, calls = {}, []
    coarse, _ = first_stable_step(planted(37, calls), range(201), probes=3, known=known)
    assert coarse >= 37 and len(calls) == 3
    assert first_stable_step(planted(37, calls), range(201), probes=6, known=known)[0] == 37
    assert len(calls) <= 9


def test_a_run_that_is_never_stable_and_a_bad_probe_count():
    calls = []
    assert first_stable_step(planted(500, calls), range(0, 201, 10), probes=9) == (None, 200)
    assert calls == [200]
    with pytest.raises(ValueError, match="at least one probe"):
        first_stable_step(planted(5, []), range(10), probes=0)


def planted_run(monkeypatch, thresholds: tuple[int, ...]):
    """A real dense run of len(thresholds) initialisations (24 steps), whose copies' barriers are planted:
    init i is stable from step thresholds[i] on. Returns the run and the list of (step, thresholds, copies)
    of every `copies` call it trains."""
    dataset = tiny_dataset()
    _, states = random_states(dataset, len(thresholds))
    config = TrainConfig(steps=24, batch_size=16, lr=0.05, momentum=0.9, schedule="constant", eval_batch_size=40)
    run = DenseRun("lenet_300_100", states, states, 0, replicate_seeds(0, len(thresholds)), config, dataset, config,
                   dataset)
    planted = dict(zip(run.seeds, thresholds))
    trained, current = [], []
    original = DenseRun.copies

    def copies(self, starts, step, masks, count=2, curves=True):
        trained.append((step, [planted[s] for s in self.seeds], count))
        current[:] = [planted[s] >= step + 1 for s in self.seeds for _ in range(count * (count - 1) // 2)]
        return original(self, starts, step, masks, count, curves)

    monkeypatch.setattr(DenseRun, "copies", copies)
    monkeypatch.setattr(stability, "copy_barrier", lambda *args: (0.5 if current.pop(0) else 0.0, None))
    return run, trained


def test_every_initialisation_finds_its_planted_first_stable_step_without_training_a_copy_twice(monkeypatch):
    """Three initialisations; 13 candidates (every 2 of 24 steps) need 1 + ceil(log2 13) = 5 probes."""
    run, trained = planted_run(monkeypatch, (0, 9, 100))
    results, pairs = search_first_stable_steps(run, candidate_steps(24, 2), probes=5, copies=3, threshold=0.02,
                                               evaluation=InterpolationConfig())
    assert results["first_stable_step"].tolist()[:2] == [0, 10]
    assert pd.isna(results["first_stable_step"][2]) and results["last_unstable_step"][2] == 24
    assert results["first_stable_epoch"][1] == pytest.approx(10 / 6)
    assert results["probes"].tolist()[:2] == [4, 5] and results["probes"][2] == 1  # at most 5, as promised
    probed = [(threshold, step) for step, inits, _ in trained for threshold in inits]
    assert len(probed) == len(set(probed)) == len(pairs) // 3  # no copy trained twice; 3 pairs of 3 copies each
    assert trained[0] == (24, [0, 9, 100], 3)  # the first probe: every initialisation's copies at once
    assert set(pairs.columns) >= {"init", "step", "copy_a", "copy_b", "barrier", "stable"}


def test_the_instability_stages_copies_are_reused_and_cost_no_probe(monkeypatch):
    """Init 0 is known stable at step 0 (from the instability stage): it trains nothing. Init 1 (stable from 9)
    is known unstable at 0 and stable at 12: the bracket starts there and needs 3 probes (6, then 8, 10)."""
    run, trained = planted_run(monkeypatch, (0, 9))
    instability = pd.DataFrame({"rewind_step": [0, 0, 12, 0], "level": [0, 0, 0, 2], "replicate": [0, 1, 1, 0],
                                "barrier": [0.001, 0.3, 0.0, 0.9]})  # the level-2 row is a masked start: not reused
    measured = stability.measured_pairs(instability, None, copies=2)
    results, pairs = search_first_stable_steps(run, candidate_steps(24, 2), probes=5, copies=2, threshold=0.02,
                                               evaluation=InterpolationConfig(), measured=measured)
    assert results["first_stable_step"].tolist() == [0, 10]
    assert results["probes"].tolist() == [0, 3] and results["reused"].tolist() == [1, 2]
    assert all(inits == [9] for _, inits, _ in trained) and [step for step, _, _ in trained] == [6, 8, 10]
    assert pairs.groupby("source").size().to_dict() == {"first_stable": 3, "instability": 3}
    # three copies per initialisation need every pair: the instability stage's one pair is not enough
    assert stability.measured_pairs(instability, None, copies=3).empty


def test_earlier_searches_pairs_are_reused_where_they_hold_every_copy():
    """Three copies' pairs at a step hold two copies' verdict (pair 0-1) and three's; two copies' pair does not
    hold three's. Where a search measured a step, its pairs are taken rather than the instability stage's."""
    instability = pd.DataFrame({"level": [0], "replicate": [0], "rewind_step": [0], "barrier": [0.3]})
    earlier = pd.DataFrame([{"init": 0, "step": step, "copy_a": a, "copy_b": b, "barrier": 0.01 * (a + b),
                             "stable": True, "source": "first_stable"}
                            for step, copies in ((0, 2), (6, 3), (12, 2)) for a, b in combinations(range(copies), 2)])
    two = stability.measured_pairs(instability, earlier, copies=2)
    assert sorted(two["step"]) == [0, 6, 12] and two.set_index("step").loc[0, "barrier"] == 0.01
    three = stability.measured_pairs(instability, earlier, copies=3)
    assert list(three["step"]) == [6, 6, 6] and sorted(three["barrier"]) == [0.01, 0.02, 0.03]
    assert list(stability.measured_pairs(instability, None, copies=2)["step"]) == [0]


def test_candidate_steps_end_at_the_end_of_training():
    assert candidate_steps(10, 4) == [0, 4, 8, 10]
    assert candidate_steps(8, 4) == [0, 4, 8]
