import pytest
import torch

from lthlib.analyses.stability import (
    ForgettingCounter,
    convergence_auc,
    first_stable_step,
)


def test_convergence_auc_of_known_curves():
    curves = torch.tensor([[0.1, 0.9, 0.9, 0.9],   # done after one epoch
                           [0.1, 0.1, 0.1, 0.9],   # all at the end: 1/3
                           [0.1, 0.5, 0.7, 0.9]])  # (0.5 + 0.75 + 1) / 3
    torch.testing.assert_close(convergence_auc(curves), torch.tensor([1.0, 1 / 3, 0.75]))
    with pytest.raises(ValueError, match="at least one epoch"):
        convergence_auc(torch.tensor([0.5]))


def test_forgetting_events_of_a_hand_made_prediction_sequence():
    """Four examples, two networks, three epochs of batches of two (each example seen once per epoch).
    Network 0: ex 0 correct, wrong, correct (1 event); ex 1 always correct (unforgettable); ex 2 never
    correct (never learned); ex 3 wrong, correct, wrong (1 event). Network 1: everything always correct."""
    sequence = {0: [True, False, True], 1: [True, True, True], 2: [False, False, False], 3: [False, True, False]}
    counter = ForgettingCounter.start(replicates=2, examples=4)
    for epoch, order in enumerate(([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2])):
        for batch in (order[:2], order[2:]):
            correct = torch.tensor([[sequence[i][epoch] for i in batch], [True, True]])
            counter.update(torch.tensor([batch, batch]), correct)
    assert counter.events.tolist() == [[1, 0, 0, 1], [0, 0, 0, 0]]
    summary = counter.summary()
    torch.testing.assert_close(summary["forgetting_events"], torch.tensor([0.5, 0.0], dtype=torch.float64))
    torch.testing.assert_close(summary["unforgettable"], torch.tensor([0.25, 1.0], dtype=torch.float64))
    torch.testing.assert_close(summary["never_learned"], torch.tensor([0.25, 0.0], dtype=torch.float64))


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
