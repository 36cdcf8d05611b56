"""Model shapes, parameter counts and parameter names."""
import pytest
import torch
import torchvision

from classification.models import CifarResNet, build_model, load_checkpoint_weights
from core.errors import CheckpointError, ConfigError


def _count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("arch,expected", [
    ("resnet18", 11_173_962),   # the usual CIFAR ResNet-18 (3x3 stem, no max-pool, 10 classes)
    ("resnet50", 23_520_842),   # the usual CIFAR ResNet-50
    ("vgg16", 14_728_266 - 4_224),  # VGG-16-BN with one 512->10 classifier, conv layers without bias
])
def test_cifar_parameter_counts(arch, expected):
    assert _count(build_model(arch, 10)) == expected


def test_imagenet_stem_layout_matches_torchvision():
    ours = CifarResNet("resnet18", num_classes=1000, width=1.0, stem="imagenet")
    theirs = torchvision.models.resnet18(weights=None)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    assert isinstance(build_model("resnet18", 1000, stem="imagenet"), torchvision.models.ResNet)


@pytest.mark.parametrize("arch,stem,size", [("resnet18", "cifar", 12), ("resnet50", "cifar", 8), ("vgg16", "cifar", 12),
                                             ("resnet18", "imagenet", 24), ("resnet50", "imagenet", 24)])
def test_narrow_models_run_on_small_images(arch, stem, size):
    model = build_model(arch, 10, width=0.0625, stem=stem).eval()
    assert model(torch.zeros(2, 3, size, size)).shape == (2, 10)


def test_bad_model_settings_are_config_errors():
    with pytest.raises(ConfigError):
        build_model("resnet34")
    with pytest.raises(ConfigError):
        build_model("resnet18", width=0.5, stem="imagenet", pretrained=True)
    with pytest.raises(ConfigError):
        build_model("vgg16", stem="imagenet")


def test_checkpoint_loading(tmp_path):
    model = build_model("resnet18", 10, width=0.0625)
    path = tmp_path / "dense.pt"
    torch.save({"model": {"module." + k: v for k, v in model.state_dict().items()}}, path)
    fresh = build_model("resnet18", 10, width=0.0625)
    load_checkpoint_weights(fresh, path)
    assert torch.equal(fresh.conv1.weight, model.conv1.weight)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint_weights(build_model("resnet18", 10, width=0.125), path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint_weights(fresh, tmp_path / "missing.pt")
