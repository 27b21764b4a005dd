import torch

from conftest import random_states, tiny_dataset
from lthlib.core.config import InterpolationConfig, TrainConfig
from lthlib.analyses.instability import copy_barrier, measure_instability, noise_seeds, train_networks
from lthlib.core.train import ReplicateSeeds

torch.set_num_threads(1)
TRAIN = TrainConfig(steps=6, batch_size=16, lr=0.05, milestones=(), eval_batch_size=40)
EVALUATION = InterpolationConfig(path_points=5, eval_examples=0, batch_size=40)


def test_copies_with_the_same_noise_seed_have_barrier_zero():
    dataset = tiny_dataset()
    _, (start,) = random_states(dataset, 1)
    seeds = ReplicateSeeds(1, 2, 3)
    same = train_networks("lenet_300_100", dataset, TRAIN, [start, start], [seeds, seeds], 0, 6, None, True, True,
                          "cpu")
    assert all(torch.equal(same[0][n], same[1][n]) for n in start)
    barrier, errors = copy_barrier("lenet_300_100", dataset, same[0], same[1], EVALUATION)
    assert barrier == 0 and len(errors) == 5
    noisy = train_networks("lenet_300_100", dataset, TRAIN, [start, start],
                           [noise_seeds(seeds, 0), noise_seeds(seeds, 1)], 0, 6, None, True, True, "cpu")
    assert not torch.equal(noisy[0]["fc1.weight"], noisy[1]["fc1.weight"])  # only the SGD noise differs


def test_noise_seeds_keep_the_initialisation_and_change_the_noise():
    seeds = ReplicateSeeds(10, 20, 30)
    copies = [noise_seeds(seeds, copy) for copy in (0, 1)]
    assert all(c.init == 10 for c in copies)
    assert len({seeds.data_order, *(c.data_order for c in copies)}) == 3
    assert len({seeds.augmentation, *(c.augmentation for c in copies)}) == 3


def test_measure_instability_rows_and_masks():
    dataset = tiny_dataset()
    _, states = random_states(dataset, 2)
    masks = {0: [{n: torch.ones_like(s[n], dtype=torch.bool) for n in ("fc1.weight", "fc2.weight", "output.weight")}
                 for s in states]}
    masks[1] = [{**m, "fc1.weight": torch.rand_like(m["fc1.weight"], dtype=torch.float) < 0.5} for m in masks[0]]
    frame = measure_instability("lenet_300_100", dataset, TRAIN, states, [ReplicateSeeds(r, r, r) for r in (1, 2)],
                                masks, (0, 3), False, True, EVALUATION, "cpu")
    assert len(frame) == 2 * 2 * 2
    assert set(frame["rewind_step"]) == {0, 3} and set(frame["level"]) == {0, 1}
    assert (frame["barrier"] >= 0).all()
    assert (frame["max_error"] >= frame[["error_a", "error_b"]].max(axis=1) - 1e-7).all()
