"Tests of memnb.ig: Integrated Gradients memorization matrices and their figures."
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from memnb.core import MemnbError
from memnb.ig import (IGConfig, attribute_maps, compute_matrices, compute_pixel_matrices, evaluate_influence,
                      plot_noise_progression_from_conditions, plot_overlay, plot_overlay_grid,
                      plot_top_memorized, save_display_images, save_figure, save_matrices, summarize_completeness,
                      to_pixels, top_instances)

LAM = 5e-3
COMPLETENESS_RTOL = 1e-4  # |delta| / |f(x) - f(0)|, Gauss–Legendre m = 50, float32
REFERENCE_ATOL = 1e-5  # matrices against the hand-written quadrature, float32
EXACT_ATOL = 1e-6  # two float32 routes to the same sum


def exact_directions(head, feats, labels, lam=LAM, damping=1e-3):
    "s_i = (H + δI)⁻¹ v_i with H the exact Hessian of the mean loss by autograd, (N, C, D+1)."
    num_classes, dim = head.weight.shape
    theta0 = torch.cat([head.weight, head.bias[:, None]], 1).double().flatten()
    feats, labels = feats.double(), labels.long()

    def loss(theta):
        theta = theta.view(num_classes, dim + 1)
        return F.cross_entropy(feats @ theta[:, :-1].T + theta[:, -1], labels) + lam * theta[:, :-1].pow(2).sum()

    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)
        hess = torch.func.jacfwd(torch.func.grad(loss))(theta0)
    vs = []
    for i in range(len(feats)):  # v_i = ∇θ p_{y_i}, by autograd one instance at a time
        theta = theta0.clone().requires_grad_()
        t = theta.view(num_classes, dim + 1)
        p = torch.softmax(t[:, :-1] @ feats[i] + t[:, -1], -1)[labels[i]]
        vs.append(torch.autograd.grad(p, theta)[0])
    v = torch.stack(vs)
    return torch.linalg.solve(hess + damping * torch.eye(len(hess), dtype=hess.dtype), v.T).T \
        .reshape(-1, num_classes, dim + 1).float()


def instance_grad(head, feat, label, lam=LAM):
    "∇θ (CE + λ||W||²) at one instance by autograd, (C, D+1)."
    theta = torch.cat([head.weight, head.bias[:, None]], 1).clone().requires_grad_()
    loss = F.cross_entropy(theta[:, :-1] @ feat + theta[:, -1], label) + lam * theta[:, :-1].pow(2).sum()
    return torch.autograd.grad(loss, theta)[0]


def quadrature_matrices(head, maps, labels, dirs, alphas, weights, lam=LAM):
    "Σ_k w_k ∇_e f(α_k x) ⊙ x summed over channels, ∇ by autograd on the full map and f from −sᵀ∇θℓ."
    total = torch.zeros_like(maps)
    for alpha, w in zip(alphas, weights):
        e = (float(alpha) * maps).requires_grad_()
        theta = torch.cat([head.weight, head.bias[:, None]], 1).requires_grad_()
        feats = e.mean((2, 3))
        # f_i(e) = −s_iᵀ ∇θ ℓ(e, y_i), taken by autograd with create_graph (double backprop here on purpose)
        out = 0
        for i in range(len(maps)):
            loss = F.cross_entropy(theta[:, :-1] @ feats[i] + theta[:, -1], labels[i]) + lam * theta[:, :-1].pow(2).sum()
            g = torch.autograd.grad(loss, theta, create_graph=True)[0]
            out = out - (dirs[i] * g).sum()
        total += float(w) * torch.autograd.grad(out, e)[0]
    return (total * maps).sum(1)


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    head = SimpleNamespace(weight=torch.randn(3, 4), bias=torch.randn(3))
    maps = torch.rand(5, 4, 2, 3)
    maps[4] = 0
    return head, maps, torch.tensor([0, 2, 1, 1, 0]), torch.randn(5, 3, 5)


def test_influence_matches_autograd(tiny):
    head, maps, labels, dirs = tiny
    feats = maps.mean((2, 3))
    expected = torch.stack([-(dirs[i] * instance_grad(head, feats[i], labels[i])).sum() for i in range(5)])
    torch.testing.assert_close(evaluate_influence(head, feats, labels, dirs), expected, atol=1e-5, rtol=1e-5)


def test_matrix_equals_gauss_legendre_sum_of_autograd_gradient(tiny):
    "captum's default rule: nodes (t+1)/2 and weights w/2 from numpy's leggauss."
    head, maps, labels, dirs = tiny
    nodes, weights = np.polynomial.legendre.leggauss(50)
    expected = quadrature_matrices(head, maps, labels, dirs, (nodes + 1) / 2, weights / 2)
    got = attribute_maps(head, maps, labels, dirs, LAM, IGConfig(n_steps=50))
    torch.testing.assert_close(got.matrices, expected, atol=REFERENCE_ATOL, rtol=0)


def test_matrix_equals_riemann_sums(tiny):
    "Midpoint rule (textbook weights 1/m) and captum's trapezoid (weights 1/m, ends halved)."
    head, maps, labels, dirs = tiny
    m = 10
    midpoint = quadrature_matrices(head, maps, labels, dirs, (np.arange(m) + 0.5) / m, np.full(m, 1 / m))
    got = attribute_maps(head, maps, labels, dirs, LAM, IGConfig(n_steps=m, method='riemann_middle'))
    torch.testing.assert_close(got.matrices, midpoint, atol=REFERENCE_ATOL, rtol=0)
    trap_weights = np.full(m, 1 / m)
    trap_weights[[0, -1]] /= 2
    trapezoid = quadrature_matrices(head, maps, labels, dirs, np.linspace(0, 1, m), trap_weights)
    got = attribute_maps(head, maps, labels, dirs, LAM, IGConfig(n_steps=m, method='riemann_trapezoid'))
    torch.testing.assert_close(got.matrices, trapezoid, atol=REFERENCE_ATOL, rtol=0)


def test_zero_input_gives_zero_matrix(tiny):
    head, maps, labels, dirs = tiny
    res = attribute_maps(head, maps, labels, dirs, keep_channels=True)
    assert torch.equal(res.matrices[4], torch.zeros(2, 3))
    assert torch.equal(res.attributions[4], torch.zeros(4, 2, 3))
    assert res.totals[4] == 0 and res.deltas[4] == 0
    assert res.matrices[:4].abs().sum() > 0


@pytest.mark.parametrize('size', [(1, 1), (7, 7), (3, 5)])
def test_shapes_follow_the_map(size):
    torch.manual_seed(1)
    head = SimpleNamespace(weight=torch.randn(10, 6), bias=torch.zeros(10))
    maps = torch.rand(7, 6, *size).half()
    res = compute_matrices(head, maps, torch.arange(7) % 10, torch.randn(7, 10, 7), cfg=IGConfig(chunk_size=3),
                           progress=False)
    assert res.matrices.shape == (7, *size) and res.matrices.dtype == torch.float32
    assert res.deltas.shape == (7,) and res.totals.shape == (7,)
    torch.testing.assert_close(res.matrices.sum((1, 2)) - res.deltas, res.totals, atol=1e-5, rtol=1e-5)


def test_chunks_idx_and_callable_agree(tiny):
    head, maps, labels, dirs = tiny
    whole = attribute_maps(head, maps, labels, dirs, keep_channels=True)
    torch.testing.assert_close(whole.attributions.sum(1), whole.matrices, atol=EXACT_ATOL, rtol=0)
    calls = []
    chunked = compute_matrices(head, maps.numpy(), labels, lambda rows: calls.append(rows) or dirs[rows],
                               cfg=IGConfig(chunk_size=2, internal_batch_size=3), idx=[4, 1, 2], progress=False)
    assert [r.tolist() for r in calls] == [[4, 1], [2]]
    torch.testing.assert_close(chunked.matrices, whole.matrices[[4, 1, 2]], atol=EXACT_ATOL, rtol=0)
    torch.testing.assert_close(chunked.deltas, whole.deltas[[4, 1, 2]], atol=EXACT_ATOL, rtol=0)


def test_pixel_route_through_identity_equals_maps(tiny):
    "captum on the full map (autograd through pooling) equals the pooled-path shortcut."
    head, maps, labels, dirs = tiny
    direct = compute_pixel_matrices(head, nn.Identity(), maps, labels, dirs, progress=False)
    shortcut = attribute_maps(head, maps, labels, dirs)
    torch.testing.assert_close(direct.matrices, shortcut.matrices, atol=REFERENCE_ATOL, rtol=0)


def test_pixel_route_through_conv_encoder():
    torch.manual_seed(2)
    encoder = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Tanh(), nn.Conv2d(8, 6, 3, stride=2, padding=1))
    head = SimpleNamespace(weight=torch.randn(4, 6), bias=torch.randn(4))
    images = torch.randn(3, 3, 16, 16)
    res = compute_pixel_matrices(head, encoder, images, torch.tensor([0, 3, 1]), torch.randn(3, 4, 7),
                                 cfg=IGConfig(n_steps=64, chunk_size=2, internal_batch_size=32), progress=False)
    assert res.matrices.shape == (3, 16, 16)
    # smooth encoder: completeness to quadrature accuracy
    assert (res.deltas.abs() / res.totals.abs()).max() < COMPLETENESS_RTOL
    # zero image -> zero map
    zero = compute_pixel_matrices(head, encoder, torch.zeros(1, 3, 16, 16), torch.tensor([2]), torch.randn(1, 4, 7),
                                  progress=False)
    assert torch.equal(zero.matrices, torch.zeros(1, 16, 16))


def _cifar(root, num_per_class):
    "The first `num_per_class` CIFAR-10 training JPEGs of each class, uint8 (N, 3, 32, 32), and labels."
    train = Path(root)/'cifar10'/'train'
    classes = sorted(p.name for p in train.iterdir())
    files = [(f, y) for y, c in enumerate(classes) for f in sorted((train/c).glob('*.jpg'))[:num_per_class]]
    images = torch.tensor(np.stack([np.asarray(Image.open(f).convert('RGB')) for f, _ in files])).permute(0, 3, 1, 2)
    return images, torch.tensor([y for _, y in files])


def test_completeness_on_real_cifar(memnb_data):
    "Real images, a random conv encoder, a fitted head and exact directions: deltas within tolerance."
    images, labels = _cifar(memnb_data, 10)
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
                            nn.Conv2d(16, 24, 3, stride=2, padding=1), nn.ReLU()).eval().requires_grad_(False)
    maps = encoder((images / 255 - 0.5) / 0.25)
    feats = maps.mean((2, 3))
    weight = torch.zeros(10, 24, requires_grad=True)
    bias = torch.zeros(10, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=100, line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(feats @ weight.T + bias, labels) + LAM * weight.pow(2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    head = SimpleNamespace(weight=weight.detach(), bias=bias.detach())
    dirs = exact_directions(head, feats, labels)
    res = compute_matrices(head, maps.half(), labels, dirs, progress=False)
    assert res.matrices.shape == (100, 8, 8)
    rel = res.deltas.abs() / res.totals.abs()
    assert rel.max() < COMPLETENESS_RTOL, rel.max()
    table = summarize_completeness(res)
    assert list(table.index) == ['q0.5', 'q0.9', 'q0.99', 'max'] and table['rel_delta'].is_monotonic_increasing
    # f_i at its own features is the influence score −g_iᵀ s_i (autograd gradient)
    scores = torch.stack([-(dirs[i] * instance_grad(head, feats[i], labels[i])).sum() for i in range(len(feats))])
    torch.testing.assert_close(evaluate_influence(head, feats, labels, dirs), scores, atol=1e-4, rtol=1e-4)


def test_bad_input_names_the_parameter(tiny):
    head, maps, labels, dirs = tiny
    cases = [
        (lambda: attribute_maps(head, maps[:, :3], labels, dirs), "`maps` must have shape (N, 4, h, w)"),
        (lambda: attribute_maps(head, maps, labels[:4], dirs), "`labels` must be integers of shape (5,)"),
        (lambda: attribute_maps(head, maps, labels, dirs[:, :2]), "`directions` must be a tensor of shape (5, 3, 5)"),
        (lambda: attribute_maps(head, maps, labels, dirs, cfg=IGConfig(n_steps=0)), "`n_steps` must be a positive integer, got 0"),
        (lambda: attribute_maps(head, maps, labels, dirs, cfg=IGConfig(n_steps=1, method='riemann_left')),
         "`n_steps` must be at least 2"),
        (lambda: attribute_maps(head, maps, labels, dirs, cfg=IGConfig(method='simpson')), "`method` must be one of"),
        (lambda: attribute_maps(head, maps, labels, dirs, lam=float('nan')), "`lam` must be a finite number >= 0"),
        (lambda: attribute_maps(SimpleNamespace(weight=torch.ones(3, 4), bias=torch.ones(2)), maps, labels, dirs),
         "`head` must have tensors `.weight` (C, D) and `.bias` (C,)"),
        (lambda: compute_matrices(head, maps, labels, dirs, idx=[0, 9], progress=False), "`idx` must be a 1-d array of rows in [0, 5)"),
        (lambda: compute_matrices(head, maps, labels, dirs, cfg=IGConfig(chunk_size=0), progress=False),
         "`chunk_size` must be a positive integer"),
        (lambda: compute_pixel_matrices(head, nn.Identity(), maps[:, :2], labels, dirs, progress=False),
         "`encoder` must return maps (N, 4, h, w)"),
        (lambda: plot_top_memorized(maps, maps, np.zeros((4, 2, 2)), np.zeros(5)), "`matrices` must have 5 rows"),
    ]
    for fn, message in cases:
        with pytest.raises(MemnbError) as err:
            fn()
        assert message in str(err.value), (message, str(err.value))


def test_saving_and_figures(tmp_path, tiny):
    head, maps, labels, dirs = tiny
    res = compute_matrices(head, maps, labels, dirs, progress=False)
    paths = save_matrices(res, tmp_path)
    assert np.load(paths[0]).shape == (5, 2, 3) and np.load(paths[0]).dtype == np.float32
    np.testing.assert_array_equal(np.load(paths[1]), res.deltas.numpy())
    images = torch.randint(0, 256, (5, 3, 12, 12), dtype=torch.uint8)
    for name, fig in [('overlay', plot_overlay(images[0], res.matrices[0], title='x')),
                      ('top', plot_top_memorized(images, images, res.matrices, res.totals, num=3)),
                      ('grid', plot_overlay_grid(images, res.matrices, res.totals, num=5, num_cols=2))]:
        written = save_figure(fig, tmp_path/name)
        assert [p.suffix for p in written] == ['.png', '.pdf'] and all(p.stat().st_size > 1000 for p in written)
    assert not list(tmp_path.glob('.tmp-*'))


def test_progression_from_condition_folders(tmp_path):
    rng = np.random.default_rng(0)
    images = {b: rng.integers(0, 256, (6, 3, 8, 8), dtype=np.uint8) for b in (0.0, 0.5)}
    for b in (0.0, 0.5):
        folder = tmp_path/f"b{b}"
        folder.mkdir()
        order = [5, 4, 3, 2, 1, 0] if b else [0, 1, 2, 3, 4, 5]  # rows in another order at β=0.5
        pd.DataFrame({'index': np.array(order) + 100, 'influence': rng.normal(size=6)}).to_parquet(folder/'scores.parquet')
        np.save(folder/'matrices.npy', rng.normal(size=(6, 2, 2)).astype(np.float32))
        table = pd.read_parquet(tmp_path/'b0.0'/'scores.parquet')
        followed = top_instances(table, 3)
        rows = pd.Index(np.array(order) + 100).get_indexer(followed)
        save_display_images(folder, followed, images[b][rows])
    fig = plot_noise_progression_from_conditions({0.0: tmp_path/'b0.0', 0.5: tmp_path/'b0.5'}, num=3)
    assert len(fig.axes) == 3 * 2 + 1  # overlays and the colorbar
    titles = [ax.get_title() for ax in fig.axes[:6]]
    assert titles[0].startswith('β=0 ') and titles[1].startswith('β=0.5 ')
    with pytest.raises(MemnbError, match='lacks dataset indices'):
        plot_noise_progression_from_conditions({0.0: tmp_path/'b0.0'}, num=5)


def test_to_pixels_inverts_the_normalization():
    mean, std = torch.tensor([0.4, 0.5, 0.6]).view(3, 1, 1), torch.tensor([0.2, 0.3, 0.25]).view(3, 1, 1)
    preprocess = lambda im: (F.interpolate(im.float(), size=(6, 6)) / 255 - mean) / std  # resizes, like the encoders'
    images = torch.randint(0, 256, (2, 3, 6, 6), dtype=torch.uint8)
    torch.testing.assert_close(to_pixels(preprocess(images), preprocess), images / 255, atol=1e-5, rtol=0)
