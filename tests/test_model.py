"""Encoder, residual path, heads and the seed-equivalent label smoothing."""

import math

import pytest
import torch
from torch import nn

from reference.seed_loop import LabelSmoothingCrossEntropy as SeedLabelSmoothingCrossEntropy  # seed 000's loss
from semg_hht.errors import SemgError
from semg_hht.models.classifier import torch_label_smoothing
from semg_hht.models.encoder import CNNEncoder, encoder_channels
from semg_hht.models.head import build_head


def encoder(**kw):
    args = dict(
        in_channels=1, input_size=32, base_channels=4, num_layers=3, norm="batch",
        leaky_slope=0.2, residual=False, residual_from=2,
    )  # fmt: skip
    return CNNEncoder(**(args | kw))


def test_channels_double_then_cap_at_32x_base_like_the_seed():
    assert encoder_channels(64, 8) == [64, 128, 256, 512, 1024, 2048, 2048, 2048]
    assert encoder(num_layers=3).feature_dim == 16


def test_forward_shape_and_halving():
    enc = encoder(num_layers=3)
    assert enc(torch.rand(2, 1, 32, 32)).shape == (2, 16)
    assert enc.blocks(torch.rand(2, 1, 32, 32)).shape == (2, 16, 4, 4)


@pytest.mark.parametrize(("layers", "size"), [(0, 256), (9, 256), (6, 32)])
def test_num_layers_validated_against_input_size(layers, size):
    with pytest.raises(SemgError, match=f"num_layers={layers}"):
        encoder(num_layers=layers, input_size=size)


def test_eight_layers_fit_256():
    assert encoder(num_layers=8, input_size=256, base_channels=1).feature_dim == 32


def test_residual_shortcuts_only_on_deep_blocks_and_really_used():
    enc = encoder(num_layers=4, residual=True, residual_from=3)
    assert [b.shortcut is not None for b in enc.blocks] == [False, False, True, True]
    block = enc.blocks[2].eval()
    x = torch.rand(2, 8, 8, 8)
    main = block.act(block.norm(block.conv(x)))
    torch.testing.assert_close(block(x), main + block.shortcut(x))
    enc(torch.rand(2, 1, 32, 32)).sum().backward()
    assert enc.blocks[2].shortcut[0].weight.grad.abs().sum() > 0


def test_residual_off_means_no_shortcuts():
    assert all(b.shortcut is None for b in encoder(num_layers=4, residual=False).blocks)


def test_instance_norm_option():
    enc = encoder(norm="instance")
    assert isinstance(enc.blocks[0].norm, nn.InstanceNorm2d)
    with pytest.raises(SemgError, match="model.norm"):
        encoder(norm="layer")


def test_adaptive_head_sizes_follow_the_seed():
    linears = [m for m in build_head("adaptive", 2048, 3, 0.5, 0) if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2048, 1024), (1024, 512), (512, 3)]
    small = [m.out_features for m in build_head("adaptive", 64, 5, 0.5, 0) if isinstance(m, nn.Linear)]
    assert small == [256, 128, 5]
    mlp = [m.out_features for m in build_head("mlp", 256, 6, 0.5, 128) if isinstance(m, nn.Linear)]
    assert mlp == [128, 6]


def test_linear_head_starts_near_uniform_where_the_adaptive_head_does_not():
    torch.manual_seed(0)
    features = torch.relu(torch.randn(256, 128))  # pooled LeakyReLU features are ~O(1)
    target = torch.randint(0, 5, (256,))
    losses = {}
    for kind in ("linear", "adaptive"):
        head = build_head(kind, 128, 5, 0.0, 0).eval()
        losses[kind] = nn.functional.cross_entropy(head(features), target).item()
    assert abs(losses["linear"] - math.log(5)) < 0.3  # an untrained model should not be confident
    assert losses["adaptive"] > 2 * math.log(5)  # the seed's Kaiming fan_out last layer: huge logits


@pytest.mark.parametrize(("smoothing", "classes"), [(0.1, 3), (0.1, 2), (0.2, 6), (0.0, 5)])
def test_builtin_label_smoothing_equals_the_seeds_loss(smoothing, classes):
    logits, target = torch.randn(32, classes), torch.randint(0, classes, (32,))
    ours = nn.CrossEntropyLoss(label_smoothing=torch_label_smoothing(smoothing, classes))(logits, target)
    torch.testing.assert_close(ours, SeedLabelSmoothingCrossEntropy(smoothing)(logits, target))


def test_label_smoothing_range_is_checked():
    with pytest.raises(SemgError, match="label_smoothing"):
        torch_label_smoothing(0.6, 2)


def test_log_compress_maps_unit_interval_onto_itself_and_lifts_faint_bins():
    from semg_hht.models.encoder import LogCompress

    x = torch.tensor([0.0, 0.001, 0.01, 0.5, 1.0])
    y = LogCompress(0.01)(x)
    assert y[0] == 0 and torch.isclose(y[-1], torch.tensor(1.0))
    assert torch.all(y[1:] > y[:-1])  # monotone
    assert y[2] > 0.1  # 1% of the peak becomes ~15% of the range: faint bins are visible
    with pytest.raises(SemgError, match="input_log_ref"):
        LogCompress(0.0)


def test_input_log_ref_is_part_of_the_encoder_and_its_features():
    plain, compressed = encoder(), encoder(input_log_ref=0.01)
    compressed.load_state_dict(plain.state_dict())  # no weights of its own: same tensors
    x = torch.rand(2, 1, 32, 32) ** 4
    plain.eval(), compressed.eval()
    assert not torch.allclose(plain(x), compressed(x))


def test_time_pooling_keeps_the_frequency_rows_and_tells_low_from_high():
    torch.manual_seed(0)
    enc = CNNEncoder(1, 32, 4, 3, "batch", 0.2, False, 6, pool="time").eval()
    assert enc.feature_dim == 4 * 4 * (32 // 8)  # last channels x frequency rows left after 3 halvings
    low, high = torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 32)
    low[..., 2, :], high[..., 29, :] = 1.0, 1.0  # one tone near 0 Hz, one near fs/2, all the time
    with torch.no_grad():
        f_low, f_high = enc(low), enc(high)
    assert f_low.shape == (1, 64) and not torch.allclose(f_low, f_high)
    energy = [f.reshape(16, 4).abs().sum(0) for f in (f_low, f_high)]  # per frequency row
    assert energy[0].argmax() < energy[1].argmax()  # the low tone lights a lower row than the high one
    pooled = CNNEncoder(1, 32, 4, 3, "batch", 0.2, False, 6).eval()
    assert pooled.feature_dim == 16  # the seed's global pooling: one number per channel
    with pytest.raises(SemgError, match="unknown model.pool"):
        CNNEncoder(1, 32, 4, 3, "batch", 0.2, False, 6, pool="space")


def test_level_free_copy_sees_the_spectrum_without_the_level_but_keeps_the_channel_ratio():
    torch.manual_seed(0)
    enc = CNNEncoder(2, 32, 4, 3, "batch", 0.2, False, 6, level_free_copy=True).eval()
    first = enc.blocks[0].conv
    assert first.in_channels == 4  # the input and its level-free copy
    x = torch.rand(3, 2, 32, 32)
    louder = x + torch.tensor([0.5, -0.2, 1.0]).view(3, 1, 1, 1)  # each sample shifted by its own level
    one_channel = x.clone()
    one_channel[:, 0] += 0.5  # only one muscle louder: the ratio between the two changes
    with torch.no_grad():
        assert not torch.allclose(enc(x), enc(louder), atol=1e-5)  # the level itself is still an input
        first.weight[:, :2] = 0  # only the copy left
        assert torch.allclose(enc(x), enc(louder), atol=1e-5)
        assert not torch.allclose(enc(x), enc(one_channel), atol=1e-5)
    plain = CNNEncoder(2, 32, 4, 3, "batch", 0.2, False, 6)
    assert plain.blocks[0].conv.in_channels == 2 and plain.feature_dim == enc.feature_dim


def test_a_level_free_copy_checkpoint_loads_with_the_copy_and_one_written_before_the_key_without(tmp_path):
    from semg_hht.models import HHTClassifier
    from semg_hht.models.loading import load_classifier
    from tests.helpers import HP, write_ckpt

    torch.manual_seed(0)
    hp = HP | {"level_free_copy": True}
    model = HHTClassifier(**hp).eval()
    path = write_ckpt(tmp_path / "copy.ckpt", tmp_path, hp=hp, state_dict=model.state_dict())
    loaded = load_classifier(path).model
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x))
    assert loaded.encoder.blocks[0].conv.in_channels == 2
    old = load_classifier(write_ckpt(tmp_path / "old.ckpt", tmp_path)).model  # HP has no level_free_copy key
    assert old.encoder.blocks[0].conv.in_channels == 1


def test_linear_path_adds_a_linear_map_of_the_pooled_input_to_the_logits():
    from semg_hht.models import HHTClassifier
    from tests.helpers import HP

    torch.manual_seed(0)
    model = HHTClassifier(**(HP | {"linear_path": 8})).eval()
    assert model.linear_path.fc[-1].in_features == 1 * 8 * 8  # in_channels x 8 x 8 pooled bins
    x1, x2 = torch.rand(3, 1, 32, 32), torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(model(x1 + x2) + model(0 * x1), model(x1) + model(x2), atol=1e-4)  # the CNN
        model.head[-1].weight.zero_()
        model.head[-1].bias.zero_()  # only the linear path left: the logits are affine in the input
        assert torch.allclose(model(x1 + x2) + model(0 * x1), model(x1) + model(x2), atol=1e-5)
        assert not torch.allclose(model(x1), model(x2))
    plain = HHTClassifier(**HP)
    assert plain.linear_path is None
    assert sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in plain.parameters()) == 64 * 3 + 3


def test_linear_path_checkpoint_round_trip_and_a_bad_size_is_one_line(tmp_path):
    from semg_hht.models import HHTClassifier
    from semg_hht.models.loading import load_classifier
    from tests.helpers import HP, write_ckpt

    torch.manual_seed(0)
    hp = HP | {"linear_path": 16}
    model = HHTClassifier(**hp).eval()
    loaded = load_classifier(write_ckpt(tmp_path / "lp.ckpt", tmp_path, hp=hp, state_dict=model.state_dict())).model
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x))
    assert load_classifier(write_ckpt(tmp_path / "old.ckpt", tmp_path)).model.linear_path is None
    without = {k: v for k, v in model.state_dict().items() if not k.startswith("linear_path.")}
    with pytest.raises(SemgError, match="do not fit its own architecture"):  # weights the model needs are gone
        load_classifier(write_ckpt(tmp_path / "cut.ckpt", tmp_path, hp=hp, state_dict=without))
    with pytest.raises(SemgError, match="model.linear_path=64"):
        HHTClassifier(**(HP | {"linear_path": 64}))  # a 32x32 input cannot pool to 64x64
