"""The first rewind step that is stable to SGD noise, by binary search ("Training stability and the lottery
ticket hypothesis", Appendix B).

For each initialisation (an IMP replicate's dense run), copies trained from the dense run at a candidate
step with different SGD noise are stable when their mean error barrier is below the threshold (2%,
Frankle et al. 2020). Stability, once reached, is assumed to persist, so a bisection over the candidate
steps finds the first stable one. All initialisations search at once: each round trains the copies of
every initialisation that probes the same step together, and no step is trained twice.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from itertools import combinations

import pandas as pd
from tqdm.auto import tqdm

from lthlib.analyses.instability import DenseRun, copy_barrier
from lthlib.core.config import InterpolationConfig
from lthlib.core.interpolate import evaluated_examples


class BinarySearch:
    """Appendix B's bisection over sorted candidate steps, driven from outside (`next_step`, `record`).

    The first probe checks the last candidate (if it is unstable, no step is), unless a stable step is
    known already; each further probe halves the bracket (last unstable, first stable). With
    `exact_probes(len(candidates))` probes the answer is exact (the paper: 9 for epochs 0..200); fewer
    leave the bracket's stable end, an upper bound. `known` holds verdicts already measured: they cost no probe.
    """

    def __init__(self, candidates: Sequence[int], probes: int, known: dict[int, bool] | None = None):
        if probes < 1:
            raise ValueError(f"the binary search needs at least one probe, got {probes}")
        self.steps, self.probes_left = sorted(candidates), probes
        self.known = {} if known is None else known

    def _bracket(self) -> tuple[int, int | None]:
        """Indices (last known unstable, -1 if none; first known stable above it, None if none) of the
        tightest bracket."""
        low = max((i for i, step in enumerate(self.steps) if self.known.get(step) is False), default=-1)
        high = min((i for i, step in enumerate(self.steps) if i > low and self.known.get(step)), default=None)
        return low, high

    def next_step(self) -> int | None:
        """The step to measure next, or None when the search is over."""
        if self.probes_left == 0:
            return None
        low, high = self._bracket()
        if high is None:  # no stable step known above the unstable ones: is the end of training stable at all?
            return None if self.steps[-1] in self.known else self.steps[-1]
        return self.steps[(low + high) // 2] if high - low > 1 else None

    def record(self, step: int, stable: bool) -> None:
        self.probes_left -= step not in self.known
        self.known[step] = bool(stable)

    def result(self) -> tuple[int | None, int | None]:
        """(first stable step found, or None when none is; last unstable step known, or None)."""
        low, high = self._bracket()
        return None if high is None else self.steps[high], None if low < 0 else self.steps[low]


def exact_probes(candidates: int) -> int:
    """Probes that make the bisection exact over `candidates` steps: the last one, then halving the
    `candidates` possible answers (Appendix B: 1 + ceil(log2 201) = ceil(log2 200) + 1 = 9)."""
    return 1 + math.ceil(math.log2(candidates))


def first_stable_step(is_stable: Callable[[int], bool], candidates: Sequence[int], probes: int,
                      known: dict[int, bool] | None = None) -> tuple[int | None, int | None]:
    """The bisection for one run whose verdict at a step `is_stable` gives (see BinarySearch)."""
    search = BinarySearch(candidates, probes, known)
    while (step := search.next_step()) is not None:
        search.record(step, is_stable(step))
    return search.result()


def candidate_steps(total_steps: int, every: int) -> list[int]:
    """0, every, 2 * every, ..., and the end of training (where the copies are the dense network itself)."""
    return sorted({*range(0, total_steps, every), total_steps})


def search_first_stable_steps(run: DenseRun, candidates: Sequence[int], probes: int, copies: int,
                              threshold: float, evaluation: InterpolationConfig,
                              measured: pd.DataFrame | None = None,
                              baseline: str = "mean") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The first stable step of every initialisation of `run`, and one row per pair of copies measured.

    Each round, every unfinished search names its next step; the dense states at those steps come
    from one pass, and the copies of all initialisations probing one step train together. `measured`
    holds pairs already measured elsewhere (columns init, step, copy_a, copy_b, barrier, source; see
    `measured_pairs`): their steps' verdicts cost no training and no probe. Barriers by `baseline`
    (`config.BARRIERS`), as `measured`'s.
    """
    reused = _reused_pairs(measured, candidates, threshold)
    searches = [BinarySearch(candidates, probes, {int(row.step): bool(row.stable) for row in
                                                  reused[reused["init"] == i].drop_duplicates("step").itertuples()})
                for i in range(len(run.seeds))]
    pairs = reused.to_dict("records")
    progress = tqdm(desc="first stable step", unit="round", leave=False)
    while requests := {i: step for i, search in enumerate(searches) if (step := search.next_step()) is not None}:
        starts = run.states_at(sorted(set(requests.values())))
        for step in sorted(set(requests.values())):
            inits = [i for i, requested in requests.items() if requested == step]
            trained, _ = dataclasses.replace(run, seeds=[run.seeds[i] for i in inits]).copies(
                [starts[step][i] for i in inits], step, None, copies, curves=False)
            for position, init in enumerate(inits):
                barriers = [copy_barrier(run.model_name, run.data, trained[a][position], trained[b][position],
                                         evaluation, baseline)[0] for a, b in combinations(range(copies), 2)]
                stable = sum(barriers) / len(barriers) < threshold
                searches[init].record(step, stable)
                pairs += [{"init": init, "step": step, "copy_a": a, "copy_b": b, "barrier": barrier,
                           "stable": stable, "source": "first_stable"}
                          for (a, b), barrier in zip(combinations(range(copies), 2), barriers)]
        progress.update()
    progress.close()
    epoch = len(run.data.train_y) // run.training.batch_size
    results = []
    for i, search in enumerate(searches):
        first, last_unstable = search.result()
        results.append({"init": i, "first_stable_step": first, "last_unstable_step": last_unstable,
                        "first_stable_epoch": None if first is None else first / epoch,
                        "probes": probes - search.probes_left,
                        "reused": reused.loc[reused["init"] == i, "step"].nunique(),
                        "examples": evaluated_examples(run.data, evaluation)})
    return pd.DataFrame(results), pd.DataFrame(pairs)


def _reused_pairs(measured: pd.DataFrame | None, candidates: Sequence[int], threshold: float) -> pd.DataFrame:
    """The measured pairs at candidate steps, each with its step's verdict (mean barrier < threshold) and the
    stage that trained it."""
    columns = ["init", "step", "copy_a", "copy_b", "barrier", "source"]
    if measured is None:
        measured = pd.DataFrame(columns=columns)
    pairs = measured.loc[measured["step"].isin(candidates), columns].copy()
    pairs.insert(5, "stable", pairs.groupby(["init", "step"])["barrier"].transform("mean") < threshold)
    return pairs


def pairs_from_instability(instability: pd.DataFrame) -> pd.DataFrame:
    """The instability stage's dense copies as measured pairs of the search: its two copies per start are
    the search's copies 0 and 1 (the same noise seeds, `noise_seeds`), trained from the same dense run."""
    dense = instability[instability["level"] == 0]
    return pd.DataFrame({"init": dense["replicate"], "step": dense["rewind_step"], "copy_a": 0, "copy_b": 1,
                         "barrier": dense["barrier"], "source": "instability"})


def measured_pairs(instability: pd.DataFrame, earlier: pd.DataFrame | None, copies: int) -> pd.DataFrame:
    """Every pair a search with `copies` copies can reuse, once each: those among copies 0 to `copies` - 1 of
    the instability stage's dense copies and of earlier searches' probes (`earlier`, optional: any spacing and
    number of copies), at each step of an initialisation where all of them were measured, since a verdict is
    the mean over every pair. Copy k's noise seeds do not depend on how many copies a search trains
    (`noise_seeds`), so the instability stage's pair is two copies' verdict, and three copies' pairs hold it too:
    the same draw, though not the same bytes where a different number of networks trained together (training
    from an unstable step amplifies the rounding)."""
    pairs = pairs_from_instability(instability)
    if earlier is not None:  # first, so that a step an earlier search measured takes all its pairs from it
        pairs = pd.concat([earlier, pairs])
    pairs = pairs.loc[pairs["copy_b"] < copies, ["init", "step", "copy_a", "copy_b", "barrier", "source"]]
    pairs = pairs.drop_duplicates(["init", "step", "copy_a", "copy_b"])
    complete = pairs.groupby(["init", "step"])["barrier"].transform("size") == math.comb(copies, 2)
    return pairs[complete]
