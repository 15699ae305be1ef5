"Tests of memnb.ssl: NT-Xent, augmentations, the encoder, seeded training, saving and loading."
import dataclasses, math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from memnb.core import MemnbError
from memnb.ssl import (CIFAR10_MEAN, CIFAR10_STD, SimCLRConfig, SimCLREncoder, augment, data_fingerprint,
                       load_encoder, load_or_train_encoder, normalize, nt_xent, train_simclr)
from memnb.ssl import _jitter, _gray

LOSS_ATOL = 1e-5  # float32 NT-Xent against the float64 loop
PIXEL_ATOL = 1e-5  # float32 resampling and colour arithmetic
TINY = SimCLRConfig(epochs=1, batch_size=8, width=4, proj_dim=8)


def nt_xent_loop(z1, z2, t):
    "NT-Xent by a loop over the 2N anchors with math.exp / math.log, in float64."
    rows = [list(map(float, r)) for r in [*z1, *z2]]
    rows = [[a / math.sqrt(sum(b * b for b in r)) for a in r] for r in rows]
    n2, total = len(rows), 0.0
    for i in range(n2):
        sim = [sum(a * b for a, b in zip(rows[i], rows[k])) / t for k in range(n2)]
        pos = (i + n2 // 2) % n2
        total += -math.log(math.exp(sim[pos]) / sum(math.exp(sim[k]) for k in range(n2) if k != i))
    return total / n2


def random_images(n, size=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)


@pytest.mark.parametrize('n,d,t', [(1, 3, 0.5), (2, 5, 0.1), (5, 4, 0.2), (7, 16, 1.0)])
def test_nt_xent_matches_loop(n, d, t):
    gen = torch.Generator().manual_seed(n)
    z1, z2 = torch.randn(n, d, generator=gen), torch.randn(n, d, generator=gen)
    assert nt_xent(z1, z2, t).item() == pytest.approx(nt_xent_loop(z1.tolist(), z2.tolist(), t), abs=LOSS_ATOL)


def test_nt_xent_hand_computed_cases():
    # one pair: the positive is the only candidate, loss 0
    assert nt_xent(torch.tensor([[1., 2.]]), torch.tensor([[-3., 0.5]]), 0.3).item() == pytest.approx(0, abs=1e-6)
    # two orthogonal pairs of identical views: cos 1 to the positive, 0 to the two others
    e = torch.eye(2)
    expected = -math.log(math.exp(1 / 0.5) / (math.exp(1 / 0.5) + 2))
    assert nt_xent(e, 5 * e, 0.5).item() == pytest.approx(expected, abs=1e-6)
    # swapping the views and rescaling rows change nothing
    gen = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen)
    assert nt_xent(z2, 3 * z1, 0.2).item() == pytest.approx(nt_xent(z1, z2, 0.2).item(), abs=LOSS_ATOL)


def test_nt_xent_bad_input():
    z = torch.randn(3, 4)
    with pytest.raises(MemnbError, match=r"`z1` and `z2` must both be \(N, D\)"): nt_xent(z, z[:2])
    with pytest.raises(MemnbError, match="`temperature` must be a number in"): nt_xent(z, z, -1)


def test_encoder_maps_are_at_least_7x7():
    for cfg in (SimCLRConfig(), SimCLRConfig(width=16, num_blocks=2)):
        encoder = SimCLREncoder(cfg.width, cfg.num_blocks, cfg.image_size).eval()
        with torch.inference_mode(): maps = encoder(normalize(random_images(3)))
        assert maps.shape == (3, 2 * cfg.width, *encoder.map_size) == (3, encoder.out_channels, 8, 8)
        assert min(maps.shape[-2:]) >= 7 and maps.dtype == torch.float32


def test_normalize_values_and_resize():
    white = torch.full((1, 3, 4, 4), 255, dtype=torch.uint8)
    expected = torch.tensor([(1 - m) / s for m, s in zip(CIFAR10_MEAN, CIFAR10_STD)])
    assert torch.allclose(normalize(white, 4)[0, :, 2, 2], expected)
    assert normalize(random_images(2, 96)).shape == (2, 3, 32, 32)
    with pytest.raises(MemnbError, match="`images` must be a non-empty uint8 tensor"): normalize(torch.rand(2, 3, 8, 8))
    with pytest.raises(MemnbError, match="`images` must be a non-empty uint8"): normalize(random_images(2)[:, :1])


def test_jitter_matches_torchvision_per_image():
    x = random_images(5).float() / 255
    gen = torch.Generator().manual_seed(1)
    b, c, s = [torch.empty(5).uniform_(0.6, 1.4, generator=gen) for _ in range(3)]
    ours = _jitter(x, b, c, s, torch.zeros(5))
    theirs = torch.stack([TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(im, bi), ci), si)
                          for im, bi, ci, si in zip(x, b, c, s)])
    assert torch.allclose(ours, theirs, atol=PIXEL_ATOL)
    assert torch.allclose(_gray(x[:1]), TF.rgb_to_grayscale(x[:1]), atol=PIXEL_ATOL)


def test_augment_without_randomness_is_normalize():
    images = random_images(4)
    plain = SimCLRConfig(crop_scale=(1.0, 1.0), p_jitter=0.0, p_gray=0.0)
    views = augment(images, plain, torch.Generator().manual_seed(0))
    x = normalize(images)
    # each view is the image or its mirror
    for v, im in zip(views, x):
        assert torch.allclose(v, im, atol=1e-4) or torch.allclose(v, im.flip(-1), atol=1e-4)
    gray = augment(images, dataclasses.replace(plain, p_gray=1.0))
    unit = gray * torch.tensor(CIFAR10_STD).view(1, 3, 1, 1) + torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    assert torch.allclose(unit[:, 0], unit[:, 1], atol=1e-5) and torch.allclose(unit[:, 1], unit[:, 2], atol=1e-5)


def test_training_is_seeded_and_leaves_global_rng_alone():
    images = random_images(32)
    torch.manual_seed(123); expected_next = torch.rand(3)
    torch.manual_seed(123)
    cfg = dataclasses.replace(SimCLRConfig(), epochs=1, batch_size=16)  # the default architecture
    first = train_simclr(images, cfg, progress=False).state_dict()
    assert torch.equal(torch.rand(3), expected_next)
    second = train_simclr(images, cfg, progress=False).state_dict()
    other = train_simclr(images, dataclasses.replace(cfg, seed=1), progress=False).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first['body.0.weight'], other['body.0.weight'])


def test_training_lowers_the_loss_on_real_images(memnb_data):
    root = memnb_data/'cifar10'/'train'
    files = [f for c in sorted(p.name for p in root.iterdir()) for f in sorted((root/c).glob('*.jpg'))[:16]]
    images = torch.from_numpy(np.stack([np.asarray(Image.open(f).convert('RGB')) for f in files])).permute(0, 3, 1, 2)
    encoder = train_simclr(images.contiguous(), SimCLRConfig(epochs=6, batch_size=80, width=16, lr=3e-3),
                           progress=False)
    losses = encoder.train_losses
    assert len(losses) == 6 and losses[0] <= math.log(2 * 80 - 1) + 0.1
    assert losses[-1] < losses[0] - 0.2, losses


def test_train_bad_input():
    with pytest.raises(MemnbError, match="`epochs` must be a positive integer, got 0"):
        train_simclr(random_images(8), dataclasses.replace(TINY, epochs=0))
    with pytest.raises(MemnbError, match="`images` must be a non-empty uint8 tensor"):
        train_simclr(random_images(8).float(), TINY)
    with pytest.raises(MemnbError, match="`images` must hold at least 2 images, got 1"):
        train_simclr(random_images(1), TINY)
    with pytest.raises(MemnbError, match="`lr` must be a number in"):
        train_simclr(random_images(8), dataclasses.replace(TINY, lr=0))
    with pytest.raises(MemnbError, match="`cfg` must be a SimCLRConfig"):
        train_simclr(random_images(8), {'epochs': 1})


def test_load_or_train_reuses_only_matching_runs(tmp_path):
    path = tmp_path/'enc.pt'
    images = random_images(16)
    first = load_or_train_encoder(images, TINY, path, progress=False)
    stamp = path.stat().st_mtime_ns
    again = load_or_train_encoder(images, TINY, path, progress=False)
    assert path.stat().st_mtime_ns == stamp and again.config == TINY
    assert all(torch.equal(first.state_dict()[k], again.state_dict()[k]) for k in first.state_dict())
    load_or_train_encoder(images, dataclasses.replace(TINY, lr=1e-3), path, progress=False)  # other config
    assert load_encoder(path).config.lr == 1e-3
    load_or_train_encoder(random_images(16, seed=5), dataclasses.replace(TINY, lr=1e-3), path, progress=False)
    assert load_encoder(path).data_fingerprint == data_fingerprint(random_images(16, seed=5))
    assert [p.name for p in tmp_path.iterdir()] == ['enc.pt']  # no temporary files left
    path.write_bytes(b'not a checkpoint')
    with pytest.raises(MemnbError, match="is not a readable encoder file"): load_encoder(path)
