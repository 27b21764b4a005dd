import pytest
import torch

from lthlib.core.models import MODELS, build_model, ignored_names, probe_points, prunable_names


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("shape, classes", [((1, 28, 28), 10), ((3, 32, 32), 100)])
def test_models_take_the_input_shape_and_class_count(name, shape, classes):
    model = build_model(name, shape, classes)
    assert model(torch.zeros(2, *shape)).shape == (2, classes)


@pytest.mark.parametrize("name", list(MODELS))
def test_prunable_tensors_are_conv_and_linear_weights_only(name):
    model = build_model(name, (3, 32, 32), 10)
    names = prunable_names(model)
    parameters = dict(model.named_parameters())
    assert names and all(n.endswith(".weight") and parameters[n].dim() in (2, 4) for n in names)
    assert not any("bn" in n or n.endswith("bias") for n in names)


def test_lenet_has_the_published_size():
    model = build_model("lenet_300_100", (1, 28, 28), 10)
    assert sum(p.numel() for n, p in model.named_parameters() if n in prunable_names(model)) == 266_200


def test_cifar_resnet20_has_about_270k_parameters():
    model = build_model("resnet20", (3, 32, 32), 10)
    assert 0.26e6 < sum(p.numel() for p in model.parameters()) < 0.28e6  # He et al.: 0.27M


def test_default_ignored_layers_follow_the_reference_codebases():
    lenet = build_model("lenet_300_100", (1, 28, 28), 10)
    assert ignored_names("lenet_300_100", lenet, "default") == ("output.weight",)
    assert ignored_names("resnet20", build_model("resnet20", (3, 32, 32), 10), "default") == ()
    with pytest.raises(ValueError, match="pruning.ignore names 'nope'"):
        ignored_names("lenet_300_100", lenet, ("nope",))


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="model.name must be one of .*, got 'vgg99'"):
        build_model("vgg99", (1, 28, 28), 10)


@pytest.mark.parametrize("name, widths, blocks", [("resnet14_8", (8, 16, 32), 2), ("resnet20_16", (16, 32, 64), 3),
                                                  ("resnet8_4", (4, 8, 16), 1)])
def test_cifar_resnets_are_named_by_depth_and_width_as_in_openlth(name, widths, blocks):
    model = build_model(name, (1, 14, 14), 10)
    convs = [m for n, m in model.blocks.named_modules() if n.endswith("conv2")]
    assert [c.out_channels for c in convs] == [w for w in widths for _ in range(blocks)]
    assert model(torch.zeros(2, 1, 14, 14)).shape == (2, 10)
    reference = build_model("resnet20", (3, 32, 32), 10).state_dict()
    assert {k: v.shape for k, v in build_model("resnet20_16", (3, 32, 32), 10).state_dict().items()} == \
        {k: v.shape for k, v in reference.items()}


def test_a_cifar_resnet_without_batchnorm_is_the_same_network_with_biased_convolutions():
    with_bn, without = build_model("resnet14_8", (1, 14, 14), 10), build_model("resnet14_8_nobn", (1, 14, 14), 10)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in without.modules()) and not list(without.buffers())
    assert prunable_names(without) == prunable_names(with_bn)
    assert all(m.bias is not None for m in without.modules() if isinstance(m, torch.nn.Conv2d))
    assert without(torch.randn(2, 1, 14, 14)).shape == (2, 10)
    with pytest.raises(ValueError, match="model.name must be one of"):
        build_model("resnet14_8_bn", (1, 14, 14), 10)


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_imagenet_resnets_are_torchvisions_with_the_output_layer_renamed(depth):
    import torchvision

    ours = build_model(f"imagenet_resnet{depth}", (3, 64, 64), 10)
    theirs = getattr(torchvision.models, f"resnet{depth}")(num_classes=10)
    assert [n.replace("output.", "body.fc.") for n in ours.state_dict()] == [f"body.{n}" for n in theirs.state_dict()]
    assert len(probe_points(ours)) == sum(len(getattr(theirs, f"layer{i}")) for i in range(1, 5))
    small = build_model(f"imagenet_resnet{depth}_cifar_stem", (1, 32, 32), 10)
    assert small.body.conv1.weight.shape == (64, 1, 3, 3) and isinstance(small.body.maxpool, torch.nn.Identity)
    assert small(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
