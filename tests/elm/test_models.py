"""Tests for elm.models: architecture (parameter counts from the formula), heads, numerics, registry contract."""

from __future__ import annotations

import importlib
import inspect
import math

import numpy as np
import pytest
import torch
from torch import nn

import elm.models  # noqa: F401  (registers every model)
from elm.models.cifar_resnet import OptionAShortcut, cifar_resnet
from elm.models.heads import CosineClassifier, ProjectionHead
from elm.registry import MODELS
from elm.types import ModelOutput

DATA = {"num_classes": 10, "in_channels": 3, "image_size": 16}
# Input size per model for shape tests: CIFAR nets and the MLP run on 16x16, ResNet-50 needs more pixels.
TEST_SIZE = {"resnet50": 64}
# Keys a factory requires (no default) and a value for tests that build every registered name.
REQUIRED = {"cifar_resnet": {"depth": 20}}


def cifar_resnet_param_count(depth: int, num_classes: int, in_channels: int = 3) -> int:
    """Parameters of a CIFAR ResNet written out from He et al. 2016, section 4.2 (option-A shortcuts)."""
    n = (depth - 2) // 6
    conv = lambda c_in, c_out: 3 * 3 * c_in * c_out  # noqa: E731  (3x3, no bias)
    bn = lambda c: 2 * c  # noqa: E731  (gamma, beta)
    total = conv(in_channels, 16) + bn(16)
    c_in = 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += conv(c_in, width) + bn(width) + conv(width, width) + bn(width)
            c_in = width
    return total + 64 * num_classes + num_classes


def build(name: str, **kwargs) -> nn.Module:
    data = dict(DATA, image_size=TEST_SIZE.get(name, DATA["image_size"]))
    return MODELS.build(name, {**REQUIRED.get(name, {}), **kwargs}, **data)


def test_resnet32_parameter_count_matches_architecture_formula() -> None:
    model = build("resnet32")
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == cifar_resnet_param_count(32, 10)
    assert cifar_resnet_param_count(32, 10) == 464_154  # the 0.46M of LDAM-DRW's resnet_cifar.py table


@pytest.mark.parametrize("name, depth", [("resnet20", 20), ("resnet56", 56)])
def test_other_depths_parameter_count(name: str, depth: int) -> None:
    model = build(name)
    assert sum(p.numel() for p in model.parameters()) == cifar_resnet_param_count(depth, 10)


def test_resnet32_layer_count() -> None:
    model = build("resnet32")
    weights = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weights) == 32


def test_invalid_depth_raises() -> None:
    with pytest.raises(ValueError, match="depth"):
        cifar_resnet(
            depth=33, num_classes=10, in_channels=3, projection_dim=None, cosine_classifier=False, cosine_scale=1.0
        )


def test_option_a_shortcut_has_no_parameters_and_subsamples_then_pads() -> None:
    shortcut = OptionAShortcut(32)
    assert sum(p.numel() for p in shortcut.parameters()) == 0
    x = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    out = shortcut(x).numpy()
    ref = np.zeros((2, 32, 4, 4), dtype=np.float32)
    xn = x.numpy()
    for c in range(16):
        for i in range(4):
            for j in range(4):
                ref[:, 8 + c, i, j] = xn[:, c, 2 * i, 2 * j]
    np.testing.assert_array_equal(out, ref)


def test_resnet32_blocks_use_option_a_where_shapes_change() -> None:
    model = build("resnet32")
    shortcuts = [m.shortcut for m in model.modules() if hasattr(m, "shortcut")]
    assert sum(isinstance(s, OptionAShortcut) for s in shortcuts) == 2  # entry of stages 2 and 3
    assert sum(isinstance(s, nn.Identity) for s in shortcuts) == 13


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("projection_dim", [None, 8])
def test_output_shapes(name: str, projection_dim: int | None) -> None:
    torch.manual_seed(0)
    model = build(name, projection_dim=projection_dim).eval()
    size = TEST_SIZE.get(name, DATA["image_size"])
    with torch.no_grad():
        out = model(torch.randn(2, DATA["in_channels"], size, size))
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (2, DATA["num_classes"])
    assert out.embeddings.shape == (2, model.embedding_dim)
    assert model.has_projection is (projection_dim is not None)
    if projection_dim is None:
        assert out.projections is None
    else:
        assert out.projections.shape == (2, projection_dim)


def test_embedding_dims() -> None:
    assert build("resnet32").embedding_dim == 64
    assert build("resnet50").embedding_dim == 2048
    assert build("tiny_mlp", hidden=7).embedding_dim == 7


def test_resnet32_embeddings_are_pooled_features_and_logits_are_linear() -> None:
    torch.manual_seed(0)
    model = build("resnet32").eval()
    x = torch.randn(3, 3, 16, 16)
    captured = {}
    model.backbone.layer3.register_forward_hook(lambda m, i, o: captured.update(feat=o))
    with torch.no_grad():
        out = model(x)
    feat = captured["feat"].numpy()  # (B, 64, 4, 4)
    assert feat.shape == (3, 64, 4, 4)
    pooled = feat.reshape(3, 64, -1).mean(axis=2)
    np.testing.assert_allclose(out.embeddings.numpy(), pooled, rtol=1e-5, atol=1e-6)
    w = model.classifier.weight.detach().numpy()
    b = model.classifier.bias.detach().numpy()
    np.testing.assert_allclose(out.logits.numpy(), pooled @ w.T + b, rtol=1e-4, atol=1e-5)


def test_resnet32_kaiming_normal_init() -> None:
    torch.manual_seed(0)
    model = build("resnet32")
    conv = model.backbone.layer3[1].conv1  # 64 * 64 * 9 weights, fan_in 576
    std = float(conv.weight.detach().std())
    assert abs(std - math.sqrt(2.0 / (64 * 9))) < 0.05 * math.sqrt(2.0 / (64 * 9))


def test_projection_head_is_linear_relu_linear() -> None:
    torch.manual_seed(0)
    head = ProjectionHead(5, 3)
    z = torch.randn(4, 5)
    (l1, _, l2) = head.net
    w1, b1 = l1.weight.detach().numpy(), l1.bias.detach().numpy()
    w2, b2 = l2.weight.detach().numpy(), l2.bias.detach().numpy()
    ref = np.maximum(z.numpy() @ w1.T + b1, 0.0) @ w2.T + b2
    assert w1.shape == (5, 5) and w2.shape == (3, 5)
    np.testing.assert_allclose(head(z).detach().numpy(), ref, rtol=1e-5, atol=1e-6)


def test_cosine_classifier_matches_reference_and_is_bounded() -> None:
    torch.manual_seed(0)
    clf = CosineClassifier(6, 4, scale=3.0)
    z = torch.randn(5, 6) * 10
    logits = clf(z).detach().numpy()
    w = clf.weight.detach().numpy()
    ref = np.zeros((5, 4))
    for i in range(5):
        for c in range(4):
            ref[i, c] = 3.0 * z[i].numpy() @ w[c] / (np.linalg.norm(z[i].numpy()) * np.linalg.norm(w[c]))
    np.testing.assert_allclose(logits, ref, rtol=1e-5, atol=1e-5)
    assert np.all(np.abs(logits) <= 3.0 + 1e-5)


@pytest.mark.parametrize("name", MODELS.names())
def test_cosine_option_uses_cosine_classifier(name: str) -> None:
    model = build(name, cosine_classifier=True, cosine_scale=5.0)
    assert isinstance(model.classifier, CosineClassifier) and model.classifier.scale == 5.0


def test_tiny_mlp_matches_manual_forward() -> None:
    torch.manual_seed(0)
    model = MODELS.build("tiny_mlp", {"hidden": 4}, num_classes=3, in_channels=2, image_size=3)
    x = torch.randn(5, 2, 3, 3)
    out = model(x)
    lin = model.backbone[1]
    w1, b1 = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    z = np.maximum(x.numpy().reshape(5, -1) @ w1.T + b1, 0.0)
    w2, b2 = model.classifier.weight.detach().numpy(), model.classifier.bias.detach().numpy()
    np.testing.assert_allclose(out.embeddings.detach().numpy(), z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.logits.detach().numpy(), z @ w2.T + b2, rtol=1e-5, atol=1e-6)


def test_resnet32_channels_last_matches_contiguous() -> None:
    torch.manual_seed(0)
    model = build("resnet32").eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out.logits, ref.logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.embeddings, ref.embeddings, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cosine", [False, True])
def test_resnet32_runs_under_bf16_autocast(cosine: bool) -> None:
    torch.manual_seed(0)
    model = build("resnet32", projection_dim=8, cosine_classifier=cosine)
    x = torch.randn(2, 3, 16, 16).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.to(memory_format=torch.channels_last)(x)
    assert out.logits.shape == (2, 10) and out.projections.shape == (2, 8)
    assert all(torch.isfinite(t.float()).all() for t in out)
    out.logits.float().sum().backward()
    assert model.backbone.conv1.weight.grad is not None


def test_resnet50_other_channel_count() -> None:
    model = MODELS.build("resnet50", {}, num_classes=4, in_channels=1, image_size=64)
    with torch.no_grad():
        out = model.eval()(torch.randn(2, 1, 64, 64))
    assert out.logits.shape == (2, 4) and out.embeddings.shape == (2, 2048)


@pytest.mark.parametrize(
    "kwargs, key", [({"projection_dim": 0}, "projection_dim"), ({"cosine_scale": 0.0}, "cosine_scale")]
)
def test_registry_rejects_out_of_range_options(kwargs: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        MODELS.build("resnet32", kwargs, **DATA)


def test_config_cannot_set_data_derived_values() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        MODELS.build("resnet32", {"num_classes": 3}, **DATA)


@pytest.mark.parametrize("name", MODELS.names())
def test_factory_is_keyword_only_and_named_after_its_file(name: str) -> None:
    factory = MODELS.get(name)
    preset = MODELS.preset(name)
    home = name if preset is None else preset.base  # an alias lives beside the factory it presets
    assert factory.__module__ == f"elm.models.{home}"
    importlib.import_module(f"elm.models.{home}")
    params = inspect.signature(factory).parameters.values()
    assert all(p.kind is p.KEYWORD_ONLY for p in params)


@pytest.mark.parametrize("name, depth", [("resnet20", 20), ("resnet32", 32), ("resnet56", 56)])
def test_resnet_depths_are_presets_of_the_cifar_resnet_factory(name: str, depth: int) -> None:
    assert MODELS.preset(name).base == "cifar_resnet" and dict(MODELS.preset(name).fixed) == {"depth": depth}
    assert "depth" not in inspect.signature(MODELS.get(name)).parameters
    assert MODELS.where(name).startswith("alias of 'cifar_resnet' with depth=")
    with pytest.raises(ValueError, match=f"model.depth is fixed to {depth} by '{name}'"):
        MODELS.check(name, {"depth": 44}, supplied=("num_classes", "in_channels"))
    torch.manual_seed(0)
    direct = cifar_resnet(
        depth=depth, num_classes=10, in_channels=3, projection_dim=None, cosine_classifier=False, cosine_scale=16.0
    )
    torch.manual_seed(0)
    via_alias = build(name)
    assert [tuple(p.shape) for p in via_alias.parameters()] == [tuple(p.shape) for p in direct.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(via_alias.parameters(), direct.parameters()))


def test_cifar_resnet_depth_is_checked() -> None:
    with pytest.raises(ValueError, match="model.depth=21 must be 6n"):
        build("cifar_resnet", depth=21)
