"""Time the ablation of one condition at the default study's size and project the whole study.

The default study has 12 conditions (2 noise kinds x 6 β), 10,000 training and 10,000 test
instances, 10 classes and the paper's head recipe (10 epochs, batch 32). Each condition trains
5 + 2 x 5 x 5 = 55 heads in one `train_heads` call. Features are synthetic (class means plus
Gaussian noise): the cost depends on the sizes only. Run it alone on the machine:

    .venv/bin/python benchmarks/ablation_speed.py [--dims 128 256]
"""
import argparse, time
import numpy as np
import torch
from memnb.ablation import AblationConfig, run_ablation
from memnb.downstream import HeadConfig

NUM_CONDITIONS = 12  # 2 noise kinds x 6 β
BUDGET_S = 600  # the whole ablation of the default study must fit in 10 minutes


def synthetic_condition(num_train, num_test, dim, num_classes, seed=0):
    "Class-structured features, labels and scores of one condition."
    gen = torch.Generator().manual_seed(seed)
    means = 3 * torch.randn(num_classes, dim, generator=gen) / dim ** 0.5  # about 4 apart
    def draw(num):
        labels = torch.randint(0, num_classes, (num,), generator=gen)
        return means[labels] + torch.randn(num, dim, generator=gen), labels  # unit noise per direction
    (feats, labels), (test_feats, test_labels) = draw(num_train), draw(num_test)
    scores = np.random.default_rng(seed).standard_normal(num_train)
    return feats, labels, scores, test_feats, test_labels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dims', type=int, nargs='+', default=[128, 256], help='feature dimensions D')
    parser.add_argument('--num-train', type=int, default=10_000)
    parser.add_argument('--num-test', type=int, default=10_000)
    parser.add_argument('--repeats', type=int, default=1, help='timed conditions per D')
    args = parser.parse_args()
    cfg, head_cfg = AblationConfig(), HeadConfig()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; N={args.num_train}, M={args.num_test}, "
          f"10 classes, {len(cfg.fractions)} fractions x {len(cfg.seeds)} seeds, {head_cfg.epochs} epochs")
    for dim in args.dims:
        times = []
        for rep in range(args.repeats):
            condition = synthetic_condition(args.num_train, args.num_test, dim, 10, seed=rep)
            start = time.perf_counter()
            runs = run_ablation(*condition, num_classes=10, head_cfg=head_cfg, cfg=cfg)
            times.append(time.perf_counter() - start)
        per_condition = float(np.median(times))
        total = NUM_CONDITIONS * per_condition
        verdict = 'within' if total <= BUDGET_S else 'OVER'
        print(f"D={dim:4d}: {per_condition:6.1f} s per condition ({len(runs)} runs, "
              f"{runs['test_acc'].mean():.3f} mean test acc); projected {NUM_CONDITIONS} conditions: "
              f"{total:6.1f} s = {total / 60:.1f} min ({verdict} the {BUDGET_S // 60} min budget)")


if __name__ == '__main__':
    main()
