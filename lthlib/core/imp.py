"""Iterative magnitude pruning with weight rewinding (Algorithm 1 of both papers).

Phase 1 (`pretrain`): train the dense net from initialisation for t_r steps: the rewind point.
Phase 2 (`run_imp`): level L trains m(L) * w_{t_r} from step t_r to the end of the schedule,
then prunes a fraction of the surviving weights of its solution to get m(L + 1); level 0 is
the dense baseline. All replicates of a level train together, or, for a run too large for one job, each
replicate in a job of its own (`replicate`), meeting in the same folders (docs/experiments.md).

A level is the unit of resumption: each replicate's folder is written atomically with a fingerprint of
everything that determines it (the dense level: settings, its rewind point, the library code IMP imports;
level L: level L - 1's fingerprint and the rule that pruned it). A re-run reuses every leading level
whose fingerprint matches, so raising `pruning.levels` or resuming a killed run trains only the missing
levels, and an experiment that changes only the pruning rule reuses the dense level. Wall times never
enter the level folders (equal results must be equal bytes): they go to a separate timing file that no
stage depends on.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import shutil
import time
from pathlib import Path

import pandas as pd

from lthlib.core import distributed, io
from lthlib.core.config import Config, PruningConfig, TrainConfig, to_dict
from lthlib.core.curves import SUMMARY_COLUMNS
from lthlib.core.data import Dataset
from lthlib.core.dependencies import ROOT, library_files
from lthlib.core.errors import UserError
from lthlib.core.models import OUTPUT_WEIGHT, build_model, ignored_names, prunable_names
from lthlib.core.pruning import Prune, dense_mask, fraction_remaining, magnitude_prune
from lthlib.core.pruning_schedule import ratio_rule
from lthlib.core.train import Replicas, ReplicateSeeds, evaluate, initial_states, learning_rate, train_replicates

# Columns of reports/imp.csv, one row per replicate and level.
COLUMNS = ["replicate", "level", "fraction_remaining", "pruning_ratio", "test_accuracy", "test_loss",
           "train_accuracy", "train_loss", "last_epoch_loss_mean", "last_epoch_loss_std", "train_steps",
           "test_examples", *SUMMARY_COLUMNS]  # the last: training stability of the level's run (core/curves.py)
# params sections that determine the dense level (the rest belong to the pruning rule, other stages, or `compute`)
_DENSE_SECTIONS = ("seed", "replicates", "data", "model", "train", "pretrain")
_RULES = "lthlib/core/pruning_schedule.py"  # the ratio rules; it imports the path evaluation only the adaptive one uses
_SWEEP = "sweep.csv"  # in level L + 1's folder: the adaptive sweep of level L's solution that chose its mask


def pretrain(config: Config, dataset: Dataset, out_dir: str | Path, device, replicate: int | None = None) -> None:
    """Phase 1: initialise every replicate (or `replicate` alone) and train it densely for t_r = pretrain.steps
    iterations.

    `dataset` is what pretraining sees: the whole training set or, for a data diet, a subset
    with possibly randomized labels (`Dataset.training_subset`); few examples get several passes.
    """
    indices = replicate_indices(config, replicate)
    seeds = [ReplicateSeeds.for_replicate(config.seed, r) for r in indices]
    states = initial_states(config.model.name, dataset.input_shape, dataset.num_classes, [s.init for s in seeds])
    schedule = config.pretraining_schedule()
    replicas, log = train_replicates(config.model.name, dataset, schedule, states, [s.for_run(0) for s in seeds], 0,
                                     config.pretrain.steps, augmentation=config.data.augment,
                                     vectorize=config.compute.vectorize, device=device, description="pretrain")
    examples = len(dataset.train_y)
    print(f"pretrained {len(indices)} replicate(s) for {config.pretrain.steps} steps in {log.seconds:.1f} s")
    for i, (r, seed) in enumerate(zip(indices, seeds)):  # no wall time in the files: equal results, equal bytes
        with io.atomic_dir(io.replicate_dir(out_dir, r)) as folder:
            io.save_tensors(states[i], folder / "init.pt")
            io.save_tensors(replicas.state_dict(i), folder / "rewind.pt")
            io.save_csv(log.curves.table(i), folder / "curves.csv")
            io.save_json({"seeds": dataclasses.asdict(seed), "rewind_step": config.pretrain.steps,
                          "lr": schedule.lr, "examples": examples,
                          "passes": config.pretrain.steps * config.train.batch_size / examples},
                         folder / "run.json")


def run_imp(config: Config, dataset: Dataset, pretrain_dir: str | Path, out_dir: str | Path, device,
            timing_path: str | Path | None = None, resume_dir: str | Path | None = None,
            replicate: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Phase 2: levels 0..pruning.levels. Returns one row per replicate and level, and the
    adaptive ratio sweeps (empty for fixed-ratio IMP).

    After each level, the ratio rule gives every replicate's pruning ratio from its solution.
    The last level is not pruned, so it costs no sweep. Seconds per level go to `timing_path`.
    With `resume_dir`, every finished level is also copied there, and a level missing from `out_dir`
    is taken from there when its fingerprint matches: a run killed inside `dvc exp run` resumes even
    though DVC resets `out_dir` to the baseline's outputs when the experiment starts again.
    With `replicate`, only that replicate trains, and no other replicate's folders are touched: the
    replicates of one run can train as concurrent jobs, and a later run of all of them reuses their levels.
    """
    indices = replicate_indices(config, replicate)
    rewind = [io.load_tensors(io.replicate_dir(pretrain_dir, r) / "rewind.pt") for r in indices]
    fingerprints = {r: level_fingerprints(config, pretrain_dir, r) for r in indices}
    timing = LevelTiming(timing_path, fingerprints)
    if replicate is None:
        _discard_replicates_from(out_dir, config.replicates)
    model = build_model(config.model.name, dataset.input_shape, dataset.num_classes)
    ignored = ignored_names(config.model.name, model, config.pruning.ignore)
    seeds = [ReplicateSeeds.for_replicate(config.seed, r) for r in indices]
    prune = pruning_rule(config.pruning, ignored)
    choose_ratio = ratio_rule(config.pruning, config.adaptive, model, prune, dataset, config.seed,
                              config.train.eval_batch_size)
    masks = [dense_mask({n: start[n] for n in prunable_names(model)}) for start in rewind]
    ratios, reusing, rows = [None] * len(indices), True, []
    solutions = rewind  # what `pruning.retrain` other than weight rewinding starts from: the previous level's solution
    for level in range(config.pruning.levels + 1):
        level_prints = {r: fingerprints[r][level] for r in indices}
        reusing = reusing and (_finished(out_dir, level, level_prints)
                               or _restored(resume_dir, out_dir, level, level_prints))
        distributed.barrier()  # data parallel: rank 0's copies and deletions are done before anyone reads
        if reusing:
            finals = [io.load_tensors(io.level_dir(out_dir, r, level) / "final.pt") for r in indices]
            replicas = Replicas.from_state_dicts(model, finals, device)
            records = [_load_record(out_dir, r, level) for r in indices]
            _say(f"level {level}: reusing the finished level in {out_dir}")
        else:
            _discard_levels_from(out_dir, level, indices)  # later levels on disk descend from another chain
            started = time.perf_counter()
            starts = rewind if config.pruning.retrain == "rewind_weights" else solutions
            replicas, records = _train_level(config, dataset, starts, masks, ratios, seeds, indices, level, device)
            timing.record(level, "train_seconds", time.perf_counter() - started)
            _save_level(out_dir, level, replicas, masks, records, level_prints, choose_ratio.sweep)
            _keep_for_resuming(out_dir, resume_dir, level, indices)
            distributed.barrier()
            _say(f"level {level}: {records[0]['fraction_remaining']:.4f} remaining, test accuracy "
                  + ", ".join(f"{r['test_accuracy']:.4f}" for r in records))
        if level < config.pruning.levels:
            solutions = [replicas.state_dict(i) for i in range(len(indices))]
            next_prints = {r: fingerprints[r][level + 1] for r in indices}
            if reusing and (_finished(out_dir, level + 1, next_prints)
                            or _restored(resume_dir, out_dir, level + 1, next_prints)):
                distributed.barrier()
                masks, ratios = _kept_pruning(out_dir, level + 1, indices, choose_ratio)
            else:
                started = time.perf_counter()
                ratios = choose_ratio(level, replicas, masks, records)
                timing.record(level, "sweep_seconds", time.perf_counter() - started)
                masks = [prune(solution, mask, ratio) for solution, mask, ratio in zip(solutions, masks, ratios)]
        rows += records
    return pd.DataFrame(rows, columns=COLUMNS), choose_ratio.sweep


def replicate_indices(config: Config, replicate: int | None) -> list[int]:
    """The replicates a run trains: all of them, or `replicate` alone (a job of its own)."""
    if replicate is None:
        return list(range(config.replicates))
    if not 0 <= replicate < config.replicates:
        raise UserError(f"--replicate {replicate}: the run has replicates 0 to {config.replicates - 1} "
                        f"(replicates: {config.replicates})")
    return [replicate]


def _say(line: str) -> None:
    if io.writes_outputs():  # one voice for a data-parallel group
        print(line)


def pruning_rule(pruning: PruningConfig, ignored: tuple[str, ...]) -> Prune:
    """`magnitude_prune` with the scope of `pruning`: global or layer-wise, the output layer at its own ratio."""
    own_ratios = {} if pruning.output_ratio is None else {OUTPUT_WEIGHT: pruning.output_ratio}
    if OUTPUT_WEIGHT in own_ratios and OUTPUT_WEIGHT in ignored:
        raise UserError(f"pruning.output_ratio={pruning.output_ratio} prunes {OUTPUT_WEIGHT}, which pruning.ignore "
                        f"leaves dense (the model's default): set pruning.ignore to [] or output_ratio to null")
    return functools.partial(magnitude_prune, ignored=ignored, layerwise=pruning.scope == "layerwise",
                             own_ratios=own_ratios)


def level_schedule(config: Config, level: int) -> TrainConfig:
    """The schedule level L >= 1 retrains on from t_r: the training schedule (weight or learning-rate rewinding),
    or, for fine-tuning, as many steps at the schedule's last learning rate (Renda et al. 2020)."""
    if level == 0 or config.pruning.retrain != "finetune":
        return config.train
    final_lr = learning_rate(config.train.steps - 1, config.train)
    return dataclasses.replace(config.train, schedule="constant", lr=final_lr, warmup_steps=0)


def _train_level(config, dataset, starts, masks, ratios, seeds, indices, level, device):
    """Level L: m(L) * (the starting weights) trained from t_r with a fresh optimizer. The start is w_{t_r}
    (weight rewinding: the survivors restart there) or level L - 1's solution (`pruning.retrain`)."""
    replicas, log = train_replicates(config.model.name, dataset, level_schedule(config, level), starts,
                                     [s.for_run(level + 1) for s in seeds], config.pretrain.steps, config.train.steps,
                                     masks, config.data.augment, config.compute.vectorize, device, f"level {level}")
    test_loss, test_accuracy = log.curves.test_loss[-1].cpu(), log.curves.test_accuracy[-1].cpu()  # the last point
    train_loss, train_accuracy = evaluate(replicas, dataset, "train", config.train.eval_batch_size,
                                          config.compute.vectorize)
    last_epoch = log.losses[-min(len(log.losses), len(dataset.train_y) // config.train.batch_size):]
    stability = log.curves.summary()
    records = [{
        "replicate": r, "level": level, "fraction_remaining": fraction_remaining(masks[i]),
        "pruning_ratio": ratios[i], "test_accuracy": float(test_accuracy[i]), "test_loss": float(test_loss[i]),
        "train_accuracy": float(train_accuracy[i]), "train_loss": float(train_loss[i]),
        # Section 2.2: epsilon of the train LCS-set is the spread of batch losses over the last epoch
        "last_epoch_loss_mean": float(last_epoch[:, i].mean()),
        "last_epoch_loss_std": float(last_epoch[:, i].std()) if len(last_epoch) > 1 else 0.0,
        "train_steps": config.train.steps - config.pretrain.steps,
        "test_examples": len(dataset.test_y),  # the resolution of test accuracy is 1 / test_examples
        **{name: float(stability[name][i]) for name in SUMMARY_COLUMNS},
    } for i, r in enumerate(indices)]
    return replicas, [dict(rec, train_losses=log.losses[:, i], curves=log.curves.table(i),
                           forgetting=log.curves.forgetting.per_example(i)) for i, rec in enumerate(records)]


def _save_level(out_dir, level, replicas, masks, records, fingerprints, sweep: pd.DataFrame):
    """Each replicate's folder of `level`, with the rows of the ratio sweep that chose its mask (adaptive IMP)."""
    for i, record in enumerate(records):
        r = record["replicate"]
        with io.atomic_dir(io.level_dir(out_dir, r, level)) as folder:
            io.save_tensors(masks[i], folder / "mask.pt")
            chose = sweep[(sweep["level"] == level - 1) & (sweep["replicate"] == r)]
            if len(chose):
                io.save_csv(chose, folder / _SWEEP)
            io.save_tensors(replicas.state_dict(i), folder / "final.pt")
            io.save_tensors(record.pop("train_losses"), folder / "train_losses.pt")
            io.save_csv(record.pop("curves"), folder / "curves.csv")
            io.save_tensors(record.pop("forgetting"), folder / "forgetting.pt")
            io.save_json({**record, "fingerprint": fingerprints[r]}, folder / "level.json")


def _kept_pruning(out_dir, level, indices, rule) -> tuple[list[dict], list[float]]:
    """The masks and ratios of a finished `level`, and the sweep that chose them handed back to `rule`: a resumed
    run does not sweep again before a level it reuses."""
    folders = [io.level_dir(out_dir, r, level) for r in indices]
    sweeps = [pd.read_csv(folder / _SWEEP) for folder in folders if (folder / _SWEEP).exists()]
    if sweeps:
        rule.restore(pd.concat(sweeps, ignore_index=True))
    return ([io.load_tensors(folder / "mask.pt") for folder in folders],
            [io.load_json(folder / "level.json")["pruning_ratio"] for folder in folders])


def _load_record(out_dir, replicate, level) -> dict:
    record = io.load_json(io.level_dir(out_dir, replicate, level) / "level.json")
    record.pop("fingerprint")
    return record


def _discard_levels_from(out_dir, level, indices) -> None:
    for r in indices if io.writes_outputs() else ():  # another job may be writing the other replicates
        for folder in io.replicate_dir(out_dir, r).glob("level_*"):
            if int(folder.name.removeprefix("level_")) >= level:
                shutil.rmtree(folder)


def _discard_replicates_from(out_dir, replicates) -> None:
    """Folders of replicates a run no longer has (`replicates` was lowered) leave the output."""
    for folder in Path(out_dir).glob("rep_*") if io.writes_outputs() else ():
        if int(folder.name.removeprefix("rep_")) >= replicates:
            shutil.rmtree(folder)


def _keep_for_resuming(out_dir, resume_dir, level, indices) -> None:
    # rank 0 alone: the others never wrote the level (`io.atomic_dir`), and rank 0 may still be writing it
    for r in indices if resume_dir is not None and io.writes_outputs() else ():
        with io.atomic_dir(io.level_dir(resume_dir, r, level)) as folder:
            shutil.copytree(io.level_dir(out_dir, r, level), folder, dirs_exist_ok=True)


def _restored(resume_dir, out_dir, level, fingerprints: dict[int, str]) -> bool:
    """Copy a finished level from `resume_dir` into `out_dir` if every replicate's fingerprint matches."""
    if resume_dir is None or not _finished(resume_dir, level, fingerprints):
        return False
    for r in fingerprints:
        with io.atomic_dir(io.level_dir(out_dir, r, level)) as folder:
            shutil.copytree(io.level_dir(resume_dir, r, level), folder, dirs_exist_ok=True)
    return True


def _finished(out_dir, level, fingerprints: dict[int, str]) -> bool:
    """Whether replicate r's folder of `level` is written and has fingerprint `fingerprints[r]`, for every r."""
    paths = {r: io.level_dir(out_dir, r, level) / "level.json" for r in fingerprints}
    return all(p.exists() and io.load_json(p).get("fingerprint") == fingerprints[r] for r, p in paths.items())


def level_fingerprints(config: Config, pretrain_dir: str | Path, replicate: int) -> list[str]:
    """Hash of what determines each level of `replicate`, levels 0..pruning.levels. The dense level: its settings,
    the replicate's rewind point, and the code of the library modules IMP imports (the list the dvc.yaml dependency test
    derives) but the pruning rules'. Level L: level L - 1's hash and the rule that prunes it (`pruning` but
    its level count; `adaptive` when the rule is adaptive) with the rule's code: the rules' module, and the
    evaluation code the adaptive rule adds. So editing that evaluation retrains no fixed-ratio level."""
    settings = to_dict(config)
    rules_only = set(library_files(_RULES)) - set(library_files("lthlib.core.train"))  # the rules, interpolate.py
    digest = hashlib.sha256(json.dumps({s: settings[s] for s in _DENSE_SECTIONS}, sort_keys=True).encode())
    digest.update(replicate.to_bytes(4, "little"))
    digest.update((io.replicate_dir(pretrain_dir, replicate) / "rewind.pt").read_bytes())
    _hash_files(digest, [path for path in library_files(__name__) if path not in rules_only])
    rule_code = sorted(rules_only) if config.pruning.adaptive else [_RULES]
    rule = {"pruning": {k: v for k, v in settings["pruning"].items() if k != "levels"},
            "adaptive": settings["adaptive"] if config.pruning.adaptive else None,
            "code": _hash_files(hashlib.sha256(), rule_code).hexdigest()}
    fingerprints = [digest.hexdigest()[:16]]
    for _ in range(config.pruning.levels):
        chained = json.dumps({"previous": fingerprints[-1], **rule}, sort_keys=True)
        fingerprints.append(hashlib.sha256(chained.encode()).hexdigest()[:16])
    return fingerprints


def _hash_files(digest, paths: list[str]):
    for path in paths:
        digest.update((ROOT / path).read_bytes())
    return digest


class LevelTiming:
    """Wall seconds per level (training, and the ratio sweep after it), per replicate, in one JSON file.

    Reused levels keep the seconds a previous run recorded for the same level fingerprint, so a resumed
    run still accounts for every level. The file is a DVC metric that no stage depends on: timings
    differ between machines, results must not.
    """

    def __init__(self, path: str | Path | None, fingerprints: dict[int, list[str]]):
        self.path, self.replicates = path, len(fingerprints)
        # a level of the run is all its replicates' folders of that level
        self.fingerprints = [hashlib.sha256(" ".join(level).encode()).hexdigest()[:16]
                             for level in zip(*fingerprints.values())]
        previous = io.load_json(path) if path is not None and Path(path).exists() else {}
        known = {fingerprint: previous["levels"].get(str(level), {})
                 for level, fingerprint in enumerate(previous.get("fingerprints", []))}
        self.levels = {str(level): known.get(fingerprint, {}) for level, fingerprint in enumerate(self.fingerprints)}

    def record(self, level: int, key: str, seconds: float) -> None:
        """Note one level's seconds (for all replicates together) and rewrite the file: a killed run keeps them."""
        if key == "train_seconds":  # a retrained level is swept again (or not at all, if last)
            self.levels[str(level)] = {}
        self.levels[str(level)][key] = round(seconds / self.replicates, 3)
        if self.path is None:
            return
        total = sum(sum(entry.values()) for entry in self.levels.values())
        io.save_json({"fingerprints": self.fingerprints, "seconds_per_replicate": round(total, 3),
                      "levels": self.levels}, self.path)
