import pandas as pd

from lthlib.report_landscape import connectivity_verdicts, dense_spread, matching_error


def _imp():
    # dense 90% and 92% (mean 91, std 1.414); level 1 matching; level 2 not
    return pd.DataFrame([
        {"replicate": r, "level": level, "fraction_remaining": 0.8 ** level, "test_accuracy": accuracy,
         "test_loss": 0.3, "train_accuracy": 0.95, "train_loss": 0.1, "wall_seconds": 1.0, "pruning_ratio": 0.2,
         "train_steps": 10, "sweep_seconds": 0.0}
        for level, accuracies in ((0, (0.90, 0.92)), (1, (0.91, 0.905)), (2, (0.80, 0.82)))
        for r, accuracy in enumerate(accuracies)])


def test_dense_spread_and_matching_error():
    mean, std = dense_spread(_imp(), "test_error")
    assert abs(mean - 0.09) < 1e-12 and abs(std - 0.0141421356) < 1e-9
    paths = pd.DataFrame({"level": [0, 0], "beta": [0.0, 1.0], "error_mean": [0.1, 0.2]})
    assert abs(matching_error(paths, std) - (0.1 + std)) < 1e-12


def test_verdicts_check_matching_and_connectivity_per_step():
    pairs = pd.DataFrame({"level_a": [0, 1, 0], "level_b": [1, 2, 2], "barrier_mean": [0.001, 0.05, 0.2],
                          "barrier_std": [0.0, 0.0, 0.0]})
    verdicts = connectivity_verdicts(_imp(), pairs, barrier_threshold=0.01)
    assert verdicts["level"].tolist() == [0, 1]  # successive steps only
    assert verdicts["matching"].tolist() == [True, True] and verdicts["next_matching"].tolist() == [True, False]
    assert verdicts["connected"].tolist() == [True, False]
