from pathlib import Path

import pytest
import yaml

from lthlib.core.config import ConfigError, load_config, parse_config, to_dict
from lthlib.core.data import DATASET_NAMES
from lthlib.core.models import KNOWN_MODELS, MODELS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", [ROOT / "params.yaml", *sorted((ROOT / "profiles").glob("*.yaml"))],
                         ids=lambda p: p.name)
def test_every_params_file_parses_and_validates(path):
    config = load_config(path)
    assert parse_config(to_dict(config)) == config  # round trip through the plain form


def keys(tree: dict, prefix: str = "") -> set[str]:
    return {key for name, value in tree.items() for key in
            (keys(value, f"{prefix}{name}.") if isinstance(value, dict) else {f"{prefix}{name}"})}


@pytest.mark.parametrize("path", [ROOT / "params.yaml", *sorted((ROOT / "profiles").glob("*.yaml"))],
                         ids=lambda p: p.name)
def test_every_params_file_sets_every_key(path):
    """A key a profile leaves out takes its dataclass default silently, which need not be params.yaml's value
    (a paper profile could run an analysis nobody asked for): every file states every setting."""
    config = load_config(path)
    assert keys(yaml.safe_load(path.read_text())) == keys(to_dict(config))


def test_default_profile_is_params_yaml():
    assert load_config(ROOT / "profiles" / "default.yaml") == load_config(ROOT / "params.yaml")


@pytest.mark.parametrize("raw, message", [
    ({"pruning": {"ratio": 1.5}}, "pruning.ratio must be in (0, 1), got 1.5"),
    ({"pruning": {"ratio": 0}}, "pruning.ratio must be in (0, 1), got 0.0"),
    ({"model": {"name": "vgg99"}}, "model.name must be one of"),
    ({"train": {"optimizer": "rmsprop"}}, "train.optimizer must be one of sgd, sgdw, adam, got 'rmsprop'"),
    ({"train": {"optimizer": "adam", "compile": True}}, "train.compile compiles the SGD step only"),
    ({"pruning": {"scope": "local"}}, "pruning.scope must be one of global, layerwise, got 'local'"),
    ({"pruning": {"output_ratio": 1.0}}, "pruning.output_ratio must be in (0, 1) or null, got 1.0"),
    ({"pruning": {"retrain": "rewind"}}, "pruning.retrain must be one of rewind_weights, rewind_lr, finetune"),
    ({"data": {"train_examples": -1}}, "data.train_examples must be >= 0 (0 = all), got -1"),
    ({"data": {"image_size": -2}}, "data.image_size must be >= 0 (0 = as stored), got -2"),
    ({"data": {"name": "svhn"}}, "data.name must be one of"),
    ({"data": {"decoder": "gpu"}}, "data.decoder must be one of auto, workers, device, got 'gpu'"),
    ({"train": {"lr": "fast"}}, "train.lr must be float, got 'fast'"),
    ({"train": {"steps": 100, "milestones": [50, 20]}}, "train.milestones must be increasing"),
    ({"train": {"lrr": 0.1}}, "unknown key train.lrr (did you mean train.lr? known: "),
    ({"train": {"zzz": 0.1}}, "unknown key train.zzz (known: "),
    ({"pretrain": {"steps": 5000}}, "pretrain.steps must be smaller than train.steps"),
    ({"el2n": {"steps": 5000}}, "el2n.steps must be at most train.steps=4680"),
    ({"replicates": 0}, "replicates must be >= 1, got 0"),
    ({"tickets": {"levels": [0]}}, "tickets.levels must be distinct IMP levels >= 1, got [0]"),
    ({"tickets": {"levels": [12]}}, "tickets.levels must be at most pruning.levels=11, got [12]"),
    ({"probes": {"blocks": [0]}}, "probes.blocks must be block numbers >= 1, got [0]"),
    ({"few_shot": {"fractions": [0.0]}}, "few_shot.fractions must be fractions in (0, 1], got [0.0]"),
    ({"transfer": {"name": "svhn"}}, "transfer.name must be null or one of"),
    ({"transfer": {"name": "fashion_mnist"}}, "transfer.classes must differ from data.classes"),
    ({"data": {"classes": [3]}}, "data.classes must be distinct class indices >= 0, at least two"),
    ({"compute": {"device": "tpu"}}, "compute.device must be auto, cpu, cuda or cuda:N"),
    ({"pruning": "all"}, "pruning must be a mapping"),
    ({"instability": {"search_probes": 0}}, "instability.search_probes must be >= 1, got 0"),
    ({"instability": {"search_copies": 1}}, "instability.search_copies must be >= 2 (a barrier needs a pair), got 1"),
    ({"instability": {"barrier": "max"}},
     "instability.barrier must be one of mean, line, got 'max'"),
    ({"instability": {"path_points": 1}}, "instability.path_points must be >= 2 (both end points), got 1"),
    ({"train": {"curve_steps": -1}}, "train.curve_steps must be >= 0 (0 = every epoch), got -1"),
])
def test_bad_values_name_their_key(raw, message):
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    assert message in str(error.value)


def test_missing_params_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "params.yaml")


def test_lists_become_tuples_and_ints_become_floats():
    config = parse_config({"train": {"steps": 1000, "milestones": [10, 20], "lr": 1}})
    assert config.train.milestones == (10, 20) and isinstance(config.train.lr, float)


def test_pretraining_uses_its_own_learning_rate_only_when_given():
    train = {"steps": 1000, "lr": 0.1, "milestones": [500]}
    config = parse_config({"train": train, "pretrain": {"steps": 10}})
    assert config.pretraining_schedule() == config.train
    diet = parse_config({"train": train, "pretrain": {"steps": 10, "lr": 0.4}})
    schedule = diet.pretraining_schedule()
    assert schedule.lr == 0.4 and diet.train.lr == 0.1
    assert schedule.milestones == (500,) and schedule.steps == 1000  # everything else is train.*


def test_names_are_checked_against_the_one_registry_of_each_family():
    for name in DATASET_NAMES:
        assert parse_config({"data": {"name": name}}).data.name == name
    for name in MODELS:
        assert parse_config({"model": {"name": name}}).model.name == name
    with pytest.raises(ConfigError) as error:
        parse_config({"data": {"name": "svhn"}})
    assert str(error.value) == f"data.name must be one of {', '.join(DATASET_NAMES)}, got 'svhn'"
    with pytest.raises(ConfigError) as error:
        parse_config({"model": {"name": "vgg16"}})
    assert str(error.value) == f"model.name must be one of {KNOWN_MODELS}, got 'vgg16'"
    for name in ("resnet21_8", "resnet2_8", "resnet20_0", "resnet18_8", "resnet20_"):
        with pytest.raises(ConfigError, match="model.name must be one of"):
            parse_config({"model": {"name": name}})


def test_only_user_errors_are_one_line_and_a_bug_keeps_its_traceback(capsys):
    from lthlib.cli import user_errors_exit
    from lthlib.core.errors import UserError

    @user_errors_exit
    def stage(error):
        raise error

    with pytest.raises(SystemExit) as exit_:
        stage(UserError("train.batch_size=512 exceeds the 256 training examples"))
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "error: train.batch_size=512 exceeds the 256 training examples\n"
    with pytest.raises(ValueError, match="a bug"):  # not a user error: the traceback stays
        stage(ValueError("a bug"))


def test_the_smoke_profile_needs_only_fashion_mnist():
    """From a fresh clone, `cp profiles/smoke.yaml params.yaml && dvc repro` has the data the README's setup fetches."""
    smoke = load_config(ROOT / "profiles" / "smoke.yaml")
    assert smoke.data.name == "fashion_mnist" and smoke.transfer.name is None
