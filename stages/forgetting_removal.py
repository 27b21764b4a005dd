"""Stage `forgetting_removal` (third paper, Appendix D, Table 7): dense copies trained from initialisation on the
whole training set (the forgetting scores' source) and without the easiest / hardest examples by forgetting score,
with their test accuracy and the error barrier between each pair."""

import pandas as pd
import typer

from lthlib.analyses.forgetting_removal import COLUMNS, forgetting_removal
from lthlib.analyses.instability import load_dense_run
from lthlib.cli import load_stage_inputs, training_stage, user_errors_exit
from lthlib.core import io


@user_errors_exit
@training_stage
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", pretrained: str = "data/pretrain",
         table: str = "reports/forgetting_removal.csv", scores: str = "data/forgetting_scores.csv"):
    config, device, data = load_stage_inputs(params, dataset)
    settings = config.forgetting_removal
    if not settings.fractions:  # off: empty outputs, so that the stage's outputs always exist
        io.save_csv(pd.DataFrame(columns=COLUMNS), table)
        io.save_csv(pd.DataFrame(columns=["forgetting"]), scores)
        return
    run = load_dense_run(config, data, data, pretrained, config.studied_replicates(settings), device)
    rows, ranking = forgetting_removal(run, settings.fractions, config.instability_evaluation(),
                                       config.instability.barrier, settings.seed)
    io.save_csv(rows, table)
    io.save_csv(ranking, scores)


if __name__ == "__main__":
    typer.run(main)
