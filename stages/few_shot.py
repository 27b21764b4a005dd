"""Stage `few_shot`: the studied tickets and the dense network trained on the same small class-balanced subsets."""

import typer

from lthlib.analyses.tickets import load_tickets, train_few_shot
from lthlib.cli import load_stage_inputs, training_stage, user_errors_exit
from lthlib.core import io


@user_errors_exit
@training_stage
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", pretrained: str = "data/pretrain",
         imp: str = "data/selected/tickets", out: str = "reports/few_shot.csv"):
    config, device, data = load_stage_inputs(params, dataset)
    tickets = load_tickets(config, pretrained, imp)
    io.save_csv(train_few_shot(tickets, data, config.train, config.few_shot, config.data.augment,
                               config.compute.vectorize, device), out)


if __name__ == "__main__":
    typer.run(main)
