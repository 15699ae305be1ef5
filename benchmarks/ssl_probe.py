"""Train the default SimCLR encoder on 10,000 CIFAR-10 images and score it by a linear probe.

The first 1,000 training images of each class (files sorted, class folders sorted = label order)
train the encoder with `SimCLRConfig()` (or saved weights are reused when `--out` already holds
them for the same config and data). A logistic-regression probe, full-batch L-BFGS on the
standardized average-pooled features, is fitted on those 10,000 images and scored on the 10,000
test images: the β = 0 probe accuracy.

    MEMNB_DATA=/tmp/memnb-data python benchmarks/ssl_probe.py --out ssl_default.pt
"""
import argparse, dataclasses, logging, os, time
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from memnb.ssl import SimCLRConfig, load_or_train_encoder, normalize


def read_cifar10(root, split, per_class):
    "First `per_class` images of each class as uint8 (N, 3, 32, 32) and labels (N,)."
    folder = Path(root)/'cifar10'/split
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files = [f for c in classes for f in sorted((folder/c).glob('*.jpg'))[:per_class]]
    images = np.stack([np.asarray(Image.open(f).convert('RGB')) for f in files])
    labels = torch.arange(len(classes)).repeat_interleave(per_class)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels


def pooled_features(encoder, images, batch_size=512):
    "Average-pooled maps (N, C) of normalized images."
    with torch.inference_mode():
        return torch.cat([encoder(normalize(images[i:i + batch_size])).mean((2, 3))
                          for i in range(0, len(images), batch_size)])


def linear_probe(train_feats, train_labels, test_feats, test_labels, l2=1e-4, steps=500):
    "Multinomial logistic regression by full-batch L-BFGS; return (train, test) accuracy."
    mean, std = train_feats.mean(0), train_feats.std(0) + 1e-6
    train_feats, test_feats = (train_feats - mean) / std, (test_feats - mean) / std
    num_classes = int(train_labels.max()) + 1
    weight = torch.zeros(train_feats.shape[1], num_classes, requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1, max_iter=steps, history_size=20, line_search_fn='strong_wolfe',
                            tolerance_grad=1e-9, tolerance_change=1e-12)
    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(train_feats @ weight + bias, train_labels) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    with torch.no_grad():
        accuracy = lambda x, y: ((x @ weight + bias).argmax(1) == y).float().mean().item()
        return accuracy(train_feats, train_labels), accuracy(test_feats, test_labels)


OVERRIDABLE = ('epochs', 'width', 'num_blocks', 'batch_size')  # SimCLRConfig fields settable from the command line

def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='ssl_default.pt', help='encoder file (reused when it matches)')
    parser.add_argument('--data', default=os.environ.get('MEMNB_DATA'), help='folder holding cifar10/')
    parser.add_argument('--per-class', type=int, default=1000, help='training images per class')
    for field in OVERRIDABLE:
        parser.add_argument(f"--{field.replace('_', '-')}", type=int, default=None, help=f'override SimCLRConfig().{field}')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s %(message)s')
    overrides = {k: v for k in OVERRIDABLE if (v := getattr(args, k)) is not None}
    cfg = dataclasses.replace(SimCLRConfig(), **overrides)
    print(f"threads {torch.get_num_threads()}, cores {os.cpu_count()}, config {cfg}")

    train_images, train_labels = read_cifar10(args.data, 'train', args.per_class)
    test_images, test_labels = read_cifar10(args.data, 'test', 1000)
    wall, cpu = time.perf_counter(), time.process_time()
    encoder = load_or_train_encoder(train_images, cfg, args.out)
    wall = time.perf_counter() - wall
    use = (time.process_time() - cpu) / (wall * torch.get_num_threads())
    print(f"ssl: {wall:.0f} s ({wall / 60:.1f} min, cpu use {use:.2f}) for {len(train_images):,} images; "
          f"losses {[round(l, 3) for l in encoder.train_losses]}")

    start = time.perf_counter()
    train_feats, test_feats = pooled_features(encoder, train_images), pooled_features(encoder, test_images)
    seconds = time.perf_counter() - start
    print(f"features: {len(train_images) + len(test_images):,} images in {seconds:.1f} s "
          f"({(len(train_images) + len(test_images)) / seconds:,.0f} images/s), dim {train_feats.shape[1]}")
    train_acc, test_acc = linear_probe(train_feats, train_labels, test_feats, test_labels)
    print(f"linear probe (beta = 0): train {train_acc:.4f}, test {test_acc:.4f}")


if __name__ == '__main__':
    main()
