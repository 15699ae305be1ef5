"""Speed of memnb's SimCLR encoder on this machine's CPU.

Prints feature-extraction throughput (batch 512, inference mode), seconds per SimCLR epoch on
10,000 images, and the projected training time of the default config (or the one given by the
options). Images are random uint8: speed does not depend on their content.

    python benchmarks/ssl_speed.py [--width 64] [--epochs 30]

`cpu use` is process CPU time / (wall time x threads): well below 1 means other processes
competed for the cores and the times are inflated.
"""
import argparse, dataclasses, os, time
import torch
from memnb.ssl import SimCLRConfig, SimCLREncoder, train_simclr


def timed(fn):
    "Run `fn`; return (its result, wall seconds, share of the threads' CPU time used)."
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    wall = time.perf_counter() - wall
    return out, wall, (time.process_time() - cpu) / (wall * torch.get_num_threads())


def main():
    defaults = SimCLRConfig()
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    for field in ('epochs', 'batch_size', 'width', 'num_blocks', 'image_size'):
        parser.add_argument(f"--{field.replace('_', '-')}", type=int, default=getattr(defaults, field))
    parser.add_argument('--num-extract', type=int, default=20_000, help='images for the extraction timing')
    parser.add_argument('--num-train', type=int, default=10_000, help='images per SSL epoch')
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (default: keep)')
    args = parser.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    cfg = dataclasses.replace(defaults, epochs=args.epochs, batch_size=args.batch_size, width=args.width,
                              num_blocks=args.num_blocks, image_size=args.image_size)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cores {os.cpu_count()}")
    print(f"config {cfg}")

    gen = torch.Generator().manual_seed(0)
    size = cfg.image_size
    encoder = SimCLREncoder(cfg.width, cfg.num_blocks, size).eval()
    x = torch.randn(512, 3, size, size, generator=gen)
    def extract():
        with torch.inference_mode():
            for start in range(0, args.num_extract, 512): encoder(x[:min(512, args.num_extract - start)])
    with torch.inference_mode(): encoder(x)  # warm-up
    _, wall, use = timed(extract)
    print(f"extraction: {args.num_extract / wall:,.0f} images/s at batch 512 "
          f"({args.num_extract:,} images in {wall:.1f} s, maps {encoder.out_channels}x"
          f"{encoder.map_size[0]}x{encoder.map_size[1]}, cpu use {use:.2f})")

    images = torch.randint(0, 256, (args.num_train, 3, size, size), dtype=torch.uint8, generator=gen)
    _, wall, use = timed(lambda: train_simclr(images, dataclasses.replace(cfg, epochs=1), progress=False))
    print(f"ssl: {wall:.1f} s per epoch on {args.num_train:,} images "
          f"({2 * args.num_train / wall:,.0f} views/s, cpu use {use:.2f})")
    print(f"projected: {cfg.epochs} epochs = {cfg.epochs * wall / 60:.1f} min")


if __name__ == '__main__':
    main()
