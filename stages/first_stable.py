"""Stage `first_stable`: the first rewind step stable to SGD noise, by binary search (third paper, Appendix B)."""

import typer

from lthlib.analyses.instability import load_dense_run
from lthlib.analyses.stability import candidate_steps, measured_pairs, search_first_stable_steps
from lthlib.analyses.subsets import pretraining_data
from lthlib.cli import load_stage_inputs, training_stage, user_errors_exit
from lthlib.core import io


@user_errors_exit
@training_stage
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", noise: str = "data/noise.pt",
         subset: str = "data/subset.csv", pretrained: str = "data/pretrain",
         instability: str = "reports/instability.csv", earlier: str = "",
         table: str = "reports/first_stable.csv", probes: str = "reports/first_stable_probes.csv"):
    """`earlier`: probes tables of earlier searches of this run, in one table (scripts/regime_search.py), whose pairs
    are reused where they hold all of this search's copies."""
    config, device, data = load_stage_inputs(params, dataset)
    settings = config.instability
    run = load_dense_run(config, data, pretraining_data(data, noise, subset), pretrained,
                         config.studied_replicates(settings), device)
    every = settings.search_every or len(data.train_y) // config.train.batch_size
    results, pairs = search_first_stable_steps(run, candidate_steps(config.train.steps, every),
                                               settings.search_probes, settings.search_copies,
                                               settings.stable_threshold, config.instability_evaluation(),
                                               measured_pairs(io.load_csv(instability),
                                                              io.load_csv(earlier) if earlier else None,
                                                              settings.search_copies),
                                               settings.barrier)
    io.save_csv(results, table)
    io.save_csv(pairs, probes)


if __name__ == "__main__":
    typer.run(main)
