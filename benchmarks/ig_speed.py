"""Time the memorization matrices of one condition at the default study's size, and the pixel option.

One condition has 10,000 scored training instances and 10 classes. Two map sizes: the SSL encoder's
128x8x8 (budget 2 minutes) and ResNet-50's 2048x7x7 (budget 10 minutes). Maps are synthetic
float16 (non-negative, like post-ReLU maps), held whole in memory as the condition notebook holds
them; directions are random and drawn per chunk by a callable, standing in for the memorization
module's solver (whose own cost is not counted here). Also timed on a subset and extrapolated:
captum run directly on the full maps (the computation the pooled-path shortcut replaces), and the
`pixels` option through a CIFAR-size conv encoder and through ResNet-50 at 224 px. Run it alone:

    .venv/bin/python benchmarks/ig_speed.py
"""
import argparse, resource, time
import torch
from torch import nn
from memnb.ig import IGConfig, compute_matrices, compute_pixel_matrices, summarize_completeness

NUM_CLASSES = 10
BUDGETS_S = {(128, 8, 8): 120, (2048, 7, 7): 600}


class Head:
    "A random linear head (C, D)."
    def __init__(self, dim, gen):
        self.weight = 0.05 * torch.randn(NUM_CLASSES, dim, generator=gen)
        self.bias = 0.1 * torch.randn(NUM_CLASSES, generator=gen)


def random_directions(dim, seed=0):
    "Callable rows (B,) -> random directions (B, C, D+1), a stand-in for the solver."
    gen = torch.Generator().manual_seed(seed)
    return lambda rows: torch.randn(len(rows), NUM_CLASSES, dim + 1, generator=gen) / dim ** 0.5


def synthetic_maps(num, shape, seed=0):
    "Non-negative float16 maps (num, *shape), filled chunk by chunk."
    gen = torch.Generator().manual_seed(seed)
    maps = torch.empty(num, *shape, dtype=torch.float16)
    for start in range(0, num, 500):
        maps[start:start + 500] = torch.rand(min(500, num - start), *shape, generator=gen).pow(2)
    return maps


def rss_gib():
    "Peak resident memory of this process so far, GiB."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def time_matrices(num, shape, cfg):
    "Matrices for `num` instances of `shape` maps: seconds and the completeness table."
    gen = torch.Generator().manual_seed(0)
    maps, head = synthetic_maps(num, shape), Head(shape[0], gen)
    labels = torch.randint(0, NUM_CLASSES, (num,), generator=gen)
    before = rss_gib()
    start = time.perf_counter()
    res = compute_matrices(head, maps, labels, random_directions(shape[0]), cfg=cfg, progress=False)
    seconds = time.perf_counter() - start
    print(f"  maps {shape}: {num} instances in {seconds:.1f} s ({1e3 * seconds / num:.2f} ms each); "
          f"maps {maps.numel() * 2 / 2 ** 30:.2f} GiB float16, peak RSS {before:.2f} -> {rss_gib():.2f} GiB")
    print(summarize_completeness(res).to_string(float_format=lambda v: f"{v:.2e}"))
    return seconds


def time_direct(num, shape, cfg):
    "captum on the full maps (autograd through the pooling), seconds per instance."
    gen = torch.Generator().manual_seed(1)
    maps, head = synthetic_maps(num, shape, 1).float(), Head(shape[0], gen)
    labels = torch.randint(0, NUM_CLASSES, (num,), generator=gen)
    start = time.perf_counter()
    compute_pixel_matrices(head, nn.Identity(), maps, labels, random_directions(shape[0]), cfg=cfg, progress=False)
    return (time.perf_counter() - start) / num


def cifar_encoder():
    "A CIFAR-size conv encoder: 32 px -> 128x8x8 (stand-in for the SSL encoder's cost)."
    def block(cin, cout, stride):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())
    return nn.Sequential(block(3, 32, 1), block(32, 64, 2), block(64, 64, 1), block(64, 128, 2), block(128, 128, 1))


def time_pixels(encoder, num, size, dim, cfg):
    "Seconds per instance of the pixel option through `encoder` at `size` px, and the max relative delta."
    gen = torch.Generator().manual_seed(2)
    images, head = torch.randn(num, 3, size, size, generator=gen), Head(dim, gen)
    labels = torch.randint(0, NUM_CLASSES, (num,), generator=gen)
    start = time.perf_counter()
    res = compute_pixel_matrices(head, encoder.eval(), images, labels, random_directions(dim), cfg=cfg, progress=False)
    seconds = (time.perf_counter() - start) / num
    return seconds, float((res.deltas.abs() / res.totals.abs()).max())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--num', type=int, default=10_000, help='instances of the condition')
    parser.add_argument('--n-steps', type=int, default=50)
    parser.add_argument('--no-resnet50', action='store_true', help='skip the ResNet-50 pixel timing')
    args = parser.parse_args()
    cfg = IGConfig(n_steps=args.n_steps)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; N={args.num}, m={args.n_steps}, "
          f"chunk {cfg.chunk_size}, internal batch {cfg.internal_batch_size}")

    print("Feature-map matrices (pooled-path shortcut):")
    for shape, budget in BUDGETS_S.items():
        seconds = time_matrices(args.num, shape, cfg)
        print(f"  -> {seconds:.1f} s of a {budget} s budget: {'OK' if seconds <= budget else 'OVER BUDGET'}")

    print("captum directly on the full maps (what the shortcut replaces), extrapolated to N:")
    for shape, num in (((128, 8, 8), 200), ((2048, 7, 7), 40)):
        per = time_direct(num, shape, IGConfig(n_steps=args.n_steps, chunk_size=20, internal_batch_size=500))
        print(f"  maps {shape}: {1e3 * per:.1f} ms each -> {per * args.num / 60:.1f} min for {args.num}")

    print("Pixel option (IG through the encoder to the image), extrapolated to N:")
    per, rel = time_pixels(cifar_encoder(), 16, 32, 128, IGConfig(n_steps=args.n_steps, chunk_size=8,
                                                                    internal_batch_size=200))
    print(f"  CIFAR conv encoder 32 px -> 128x8x8: {1e3 * per:.0f} ms each -> {per * args.num / 60:.1f} min "
          f"for {args.num}; max |delta|/|f(x)-f(0)| {rel:.1e}")
    if not args.no_resnet50:
        import torchvision
        resnet = nn.Sequential(*list(torchvision.models.resnet50(weights=None).children())[:-2])
        per, rel = time_pixels(resnet, 1, 224, 2048, IGConfig(n_steps=args.n_steps, chunk_size=1,
                                                              internal_batch_size=10))
        print(f"  ResNet-50 224 px -> 2048x7x7: {per:.1f} s each -> {per * args.num / 3600:.1f} h for {args.num}; "
              f"max |delta|/|f(x)-f(0)| {rel:.1e}")


if __name__ == '__main__':
    main()
