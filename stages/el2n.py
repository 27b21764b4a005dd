"""Stage `el2n`: EL2N score and forgetting score of every training example (against its possibly randomized
label), computed only when `subset.kind` ranks by one of them (easy, hard, forgetting_easy, forgetting_hard);
otherwise the scores are left empty, at no cost."""

import dataclasses

import typer

from lthlib.analyses.el2n import (
    compute_scores,
    require_forgetting_epochs,
    scores_needed,
    scores_table,
)
from lthlib.analyses.subsets import LabelNoise
from lthlib.cli import load_stage_inputs, training_stage, user_errors_exit
from lthlib.core import io


@user_errors_exit
@training_stage
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", noise: str = "data/noise.pt",
         out: str = "data/el2n"):
    config, device, data = load_stage_inputs(params, dataset)
    require_forgetting_epochs(config.subset.kind, config.el2n.steps, len(data.train_y), config.train.batch_size)
    labels = LabelNoise(**io.load_tensors(noise))
    scores = None
    if scores_needed(config.subset.kind):
        data = dataclasses.replace(data, train_y=labels.labels.to(device))  # Appendix A
        scores = compute_scores(data, config.model.name, config.train, config.el2n.networks, config.el2n.steps,
                                config.seed, device, config.data.augment, config.compute.vectorize)
    table = scores_table(scores, labels.labels)
    with io.atomic_dir(out) as folder:
        io.save_csv(table, folder / "scores.csv")


if __name__ == "__main__":
    typer.run(main)
