import math

import pandas as pd
import pytest
import torch
from conftest import tiny_dataset

import lthlib.core.train
from lthlib.analyses.subsets import (
    choose_subset,
    pretraining_data,
    randomize_labels,
    ranking_scores,
    subset_size,
    subset_summary,
    subset_table,
)
from lthlib.core import io
from lthlib.core.config import TrainConfig
from lthlib.core.data import Dataset, balanced_quotas
from lthlib.core.models import build_model
from lthlib.core.train import Replicas, ReplicateSeeds, initial_states, train



def labels_with_counts(counts, seed=0):
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]


def test_random_subset_has_equal_counts_per_class_and_no_repeats():
    labels = labels_with_counts([50, 30, 20])
    chosen = choose_subset("random", 30, labels, seed=3)
    assert torch.bincount(labels[chosen], minlength=3).tolist() == [10, 10, 10]
    assert len(set(chosen.tolist())) == 30 and chosen.tolist() == sorted(chosen.tolist())


def test_a_small_class_gives_its_share_to_the_others():
    labels = labels_with_counts([50, 30, 20])
    counts = torch.bincount(labels[choose_subset("random", 75, labels, seed=1)], minlength=3).tolist()
    assert counts[2] == 20 and sorted(counts[:2]) == [27, 28]  # 75 = 27 + 28 + 20, as equal as possible
    assert balanced_quotas(torch.tensor([5, 5]), 10, torch.Generator()).tolist() == [5, 5]


def test_random_subset_is_deterministic_for_a_seed():
    labels = labels_with_counts([40, 40, 40])
    assert torch.equal(choose_subset("random", 30, labels, seed=7), choose_subset("random", 30, labels, seed=7))
    assert not torch.equal(choose_subset("random", 30, labels, seed=7), choose_subset("random", 30, labels, seed=8))


def test_easy_and_hard_are_the_two_ends_of_the_el2n_ranking():
    scores = torch.tensor([0.5, 0.1, 0.9, 0.1, 0.7, 0.3, 0.9, 0.2])
    labels = torch.zeros(8, dtype=torch.int64)
    easy, hard = choose_subset("easy", 4, labels, scores), choose_subset("hard", 4, labels, scores)
    assert easy.tolist() == [1, 3, 7, 5]  # easiest first; the tie 0.1 goes to the lower index
    assert hard.tolist() == [6, 2, 4, 0]  # hardest first
    assert set(easy.tolist()).isdisjoint(hard.tolist())
    rest = [i for i in range(8) if i not in easy.tolist()]
    assert scores[easy].max() <= scores[rest].min()
    assert choose_subset("all", 3, labels).tolist() == list(range(8))
    with pytest.raises(ValueError, match="EL2N"):
        choose_subset("easy", 4, labels)
    assert choose_subset("easy", 4, labels, scores, seed=5).tolist() == easy.tolist()  # EL2N ties: by index


def test_forgetting_easy_and_hard_are_the_two_ends_of_the_forgetting_ranking():
    # 20 unforgettable examples (0 events) tie; 4 forgotten; 2 never learned by some network (inf)
    scores = torch.zeros(26)
    scores[[3, 7, 11, 19, 22, 25]] = torch.tensor([2.0, math.inf, 0.5, 1.0, math.inf, 4.0])
    labels = torch.zeros(26, dtype=torch.int64)
    easy = choose_subset("forgetting_easy", 13, labels, scores, seed=1)
    hard = choose_subset("forgetting_hard", 13, labels, scores, seed=1)
    assert (scores[easy] == 0).all()  # the fewest forgetting events
    assert set(hard[:2].tolist()) == {7, 22} and hard[2:6].tolist() == [25, 3, 19, 11]  # the most, hardest first
    assert (scores[hard[6:]] == 0).all()
    assert set(easy.tolist()).isdisjoint(hard.tolist()) and len(set(easy.tolist()) | set(hard.tolist())) == 26
    for kind, subset in (("forgetting_easy", easy), ("forgetting_hard", hard)):
        assert torch.equal(choose_subset(kind, 13, labels, scores, seed=1), subset)  # reproducible
        other = choose_subset(kind, 13, labels, scores, seed=2)
        assert not torch.equal(other, subset)  # another seed, another order among the ties
        assert sorted(scores[other].tolist()) == sorted(scores[subset].tolist())  # but the same scores
    assert easy.tolist() != sorted(easy.tolist())  # ties not by index


def test_each_ranked_kind_reads_its_own_column_of_the_scores_table():
    table = pd.DataFrame({"score": [0.3, 0.1], "forgetting": [0.0, math.inf]})
    assert ranking_scores("easy", table).tolist() == ranking_scores("hard", table).tolist() == [0.3, 0.1]
    assert ranking_scores("forgetting_easy", table).tolist() == [0.0, math.inf]
    assert ranking_scores("forgetting_hard", table).tolist() == [0.0, math.inf]
    assert ranking_scores("all", table) is None and ranking_scores("random", table) is None


def test_subset_size_is_a_count_or_a_fraction():
    assert subset_size(500, 1000) == 500 and subset_size(0.25, 1000) == 250 and subset_size(1.0, 1000) == 1000
    with pytest.raises(ValueError, match="subset.size"):
        subset_size(2000, 1000)


def test_realised_corruption_rate_is_within_binomial_noise_of_p_times_one_minus_one_over_c():
    n, classes, p = 20000, 10, 0.3
    labels = torch.randint(0, classes, (n,), generator=torch.Generator().manual_seed(0))
    noise = randomize_labels(labels, classes, p, seed=11)
    selected = round(p * n)
    assert int(noise.selected.sum()) == selected
    assert torch.equal(noise.labels[~noise.selected], labels[~noise.selected])  # others keep their label
    assert torch.equal(noise.corrupted, noise.labels != labels) and not (noise.corrupted & ~noise.selected).any()
    # each redrawn label is wrong with probability 1 - 1/C: Binomial(selected, 0.9), std ~ 23
    mean, std = selected * (1 - 1 / classes), math.sqrt(selected * (1 - 1 / classes) / classes)
    assert abs(int(noise.corrupted.sum()) - mean) < 4 * std
    assert torch.equal(randomize_labels(labels, classes, p, seed=11).labels, noise.labels)
    assert torch.equal(randomize_labels(labels, classes, 0.0, seed=11).labels, labels)


def test_subset_table_reports_the_corrupted_fraction_of_the_chosen_examples():
    labels = torch.tensor([0, 1, 2, 0])
    noise = randomize_labels(labels, 3, 1.0, seed=0)
    scores = pd.DataFrame({"score": [0.1, 0.2, 0.3, 0.4], "forgetting": [0.0, 1.5, 0.0, math.inf]})
    table = subset_table(torch.tensor([3, 1]), scores, noise, labels)
    assert table["index"].tolist() == [3, 1] and table["score"].tolist() == [0.4, 0.2]
    assert table["forgetting"].tolist() == [math.inf, 1.5]
    assert table["corrupted"].tolist() == (noise.labels[[3, 1]] != labels[[3, 1]]).tolist()


def test_pretraining_on_m_examples_for_more_than_m_over_batch_steps_makes_repeated_passes(monkeypatch):
    n, m, batch, steps = 60, 12, 4, 9  # 9 steps * 4 = 36 examples seen = 3 passes over the 12
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()  # pixel = index
    labels = torch.arange(n) % 3
    data = Dataset("tiny", ["a", "b", "c"], images, labels, images[:4], labels[:4], torch.tensor([0.0]),
                   torch.tensor([1 / 255]))  # normalize() then returns the pixel value, i.e. the index
    chosen = torch.arange(0, n, 5)  # 12 examples
    noisy = (labels + 1) % 3
    seen = []
    real_step = lthlib.core.train._training_step

    def recording_step(replicas, optimizer, inputs, batch_labels, *args):
        seen.append((inputs[..., 0, 0, 0].round().long().flatten(), batch_labels.flatten()))
        return real_step(replicas, optimizer, inputs, batch_labels, *args)

    monkeypatch.setattr(lthlib.core.train, "_training_step", recording_step)
    subset = data.training_subset(chosen, noisy)
    seeds = [ReplicateSeeds.for_replicate(0, 0)]
    replicas = Replicas.from_state_dicts(build_model("lenet_300_100", (1, 2, 2), 3),
                                         initial_states("lenet_300_100", (1, 2, 2), 3, [seeds[0].init]), "cpu")
    train(replicas, subset, TrainConfig(steps=20, batch_size=batch, lr=0.01), seeds, 0, steps)
    indices = torch.cat([s[0] for s in seen])
    assert len(seen) == steps and set(indices.tolist()) == set(chosen.tolist())  # only the subset
    assert torch.bincount(indices, minlength=n)[chosen].tolist() == [steps * batch // m] * m  # 3 passes each
    assert torch.equal(torch.cat([s[1] for s in seen]), noisy[indices])  # with the randomized labels


def test_ranked_kinds_refuse_missing_scores_and_the_others_need_none():
    labels = torch.tensor([0, 1, 0, 1])
    missing = torch.tensor([0.2, float("nan"), 0.1, 0.4])
    for kind in ("easy", "hard"):
        with pytest.raises(ValueError, match=f"subset.kind='{kind}' needs EL2N scores, and some are missing"):
            choose_subset(kind, 2, labels, missing)
    for kind in ("forgetting_easy", "forgetting_hard"):
        with pytest.raises(ValueError, match=f"subset.kind='{kind}' needs forgetting scores, and some are missing"):
            choose_subset(kind, 2, labels, missing)
        with pytest.raises(ValueError, match=f"subset.kind='{kind}' needs forgetting scores"):
            choose_subset(kind, 2, labels)
    assert choose_subset("all", 4, labels, torch.full((4,), float("nan"))).tolist() == [0, 1, 2, 3]
    assert torch.bincount(labels[choose_subset("random", 2, labels, missing)]).tolist() == [1, 1]


def test_subset_summary_counts_and_scores_by_hand():
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    noise = randomize_labels(labels, 3, 0.0, seed=0)
    noise.labels[4], noise.corrupted[4] = 0, True  # one example's label really changed, by hand
    scores = pd.DataFrame({"score": [0.1, 0.6, 0.2, 0.9, 0.3, 0.5], "forgetting": [0, 2, 0, math.inf, 0, 1]})
    summary = subset_summary("hard", 4, subset_table(torch.tensor([3, 1, 5, 4]), scores, noise, labels), 6, 3)
    assert summary == {"kind": "hard", "size": 4, "examples": 4, "fraction_of_training_set": pytest.approx(4 / 6),
                       "corrupted": 1, "corrupted_fraction": 0.25, "score_mean": pytest.approx(0.575),
                       "score_max": 0.9, "examples_per_class_min": 1, "examples_per_class_max": 2,
                       # forgetting 2, 1, 0 and one never learned (inf), counted apart from the mean
                       "forgetting_mean": 1.0, "unforgettable_fraction": 0.25, "never_learned_fraction": 0.25}
    unscored = pd.DataFrame({"score": [float("nan")] * 6, "forgetting": [float("nan")] * 6})
    summary = subset_summary("all", 1.0, subset_table(torch.arange(6), unscored, noise, labels), 6, 3)
    assert summary["score_mean"] is None and summary["score_max"] is None  # JSON null, not NaN
    assert [summary[key] for key in ("forgetting_mean", "unforgettable_fraction", "never_learned_fraction")] == [
        None, None, None]


def test_pretraining_data_is_the_subsets_examples_with_the_noisy_labels(tmp_path):
    dataset = tiny_dataset(train=12, test=4, classes=3)
    noisy = (dataset.train_y + 1) % 3
    io.save_tensors({"labels": noisy}, tmp_path / "noise.pt")
    io.save_csv(pd.DataFrame({"rank": range(3), "index": [7, 2, 10]}), tmp_path / "subset.csv")
    data = pretraining_data(dataset, tmp_path / "noise.pt", tmp_path / "subset.csv")
    assert torch.equal(data.train_x, dataset.train_x[[7, 2, 10]])
    assert data.train_y.tolist() == [(7 % 3 + 1) % 3, (2 % 3 + 1) % 3, (10 % 3 + 1) % 3] == [2, 0, 2]
    assert torch.equal(data.test_x, dataset.test_x) and torch.equal(data.test_y, dataset.test_y)


def test_a_subset_smaller_than_one_batch_names_the_batch_size():
    dataset = tiny_dataset()
    subset = dataset.training_subset(torch.arange(10))
    replicas = Replicas.from_state_dicts(build_model("lenet_300_100", dataset.input_shape, 4),
                                         initial_states("lenet_300_100", dataset.input_shape, 4, [0]), "cpu")
    with pytest.raises(ValueError, match="train.batch_size=16 exceeds the 10 training examples"):
        train(replicas, subset, TrainConfig(steps=4, batch_size=16), [ReplicateSeeds.for_replicate(0, 0)], 0, 4)
