"""Speed and memory of memnb's influence solvers (prints figures; not a timed test).

Run it alone on the machine, so that other jobs do not distort the timings:

    python benchmarks/influence_speed.py            # every case
    python benchmarks/influence_speed.py --case exact-2048x10

Each case runs in its own process so that its peak memory (ru_maxrss) is its own. Targets: 10,000
instances × 2048 features × 10 classes with `exact` in at most 3 minutes, × 100 classes in at most
10 minutes, peak memory under 8 GiB each.
"""
from __future__ import annotations
import argparse, json, resource, subprocess, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np
import torch
from scipy import stats

CASES = {  # name: (num instances, num features, num classes, solver)
    'exact-2048x10': (10_000, 2048, 10, 'exact'),
    'woodbury-2048x10': (10_000, 2048, 10, 'woodbury'),
    'woodbury-2048x100': (10_000, 2048, 100, 'woodbury'),
    'exact-256x100': (10_000, 256, 100, 'exact'),
    'woodbury-256x100': (10_000, 256, 100, 'woodbury'),
    'lissa-2048x10': (10_000, 2048, 10, 'lissa'),
}
DEFAULT = ['exact-2048x10', 'woodbury-2048x10', 'woodbury-2048x100', 'lissa-2048x10']
COMPARE = [('woodbury-2048x10', 'exact-2048x10'), ('woodbury-256x100', 'exact-256x100')]

def peak_gib():
    "Peak resident memory of this process so far, GiB."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

def make_data(num, num_feats, num_classes, seed=0):
    "Class-structured non-negative features (like pooled ReLU maps) and a head fitted to them."
    from memnb.memorization import fit_head_lbfgs
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (num,), generator=gen)
    centers = torch.randn(num_classes, num_feats, generator=gen) * 0.5
    feats = torch.relu(centers[labels] + torch.randn(num, num_feats, generator=gen))
    feats *= 10 / feats.norm(dim=1).mean()
    flip = torch.rand(num, generator=gen) < 0.1  # some mislabelled rows to memorize
    labels[flip] = torch.randint(0, num_classes, (int(flip.sum()),), generator=gen)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # a short fit is enough for timing
        head = fit_head_lbfgs(feats, labels, num_classes, 5e-3, max_iter=100)
    return feats, labels, head

def run_case(name, out):
    "Run one case in this process and write its figures (and scores) to `out`."
    from memnb.memorization import InfluenceConfig, SOLVERS, PAPER_DAMPING
    num, num_feats, num_classes, solver = CASES[name]
    torch.manual_seed(0)
    start = time.perf_counter()
    feats, labels, head = make_data(num, num_feats, num_classes)
    res = {'case': name, 'data_s': time.perf_counter() - start, 'params': num_classes * (num_feats + 1)}
    if solver == 'lissa':
        exact = SOLVERS['exact'](head, feats, labels, InfluenceConfig(damping='paper', solver='exact'))
        rows = torch.arange(3)
        start = time.perf_counter()
        exact_scores = exact.scores()['influence']
        res['exact_total_s'] = sum(exact.timings.values())
        res['exact_per_instance_s'] = res['exact_total_s'] / num
        lissa = SOLVERS['lissa'](head, feats, labels, InfluenceConfig(damping='paper', solver='lissa'))
        res['lissa_fixed_s'] = lissa.timings['fixed solves']
        start = time.perf_counter()
        lissa_scores = torch.cat([lissa.scores(rows[i:i + 1])['influence'] for i in range(3)])
        res['lissa_per_instance_s'] = (time.perf_counter() - start) / 3
        res['ratio'] = res['lissa_per_instance_s'] / res['exact_per_instance_s']
        res['lissa'], res['exact'] = lissa_scores.tolist(), exact_scores[rows].tolist()
    else:
        cfg = InfluenceConfig(solver=solver, progress=False)
        start = time.perf_counter()
        fitted = SOLVERS[solver](head, feats, labels, cfg)
        scores = fitted.scores()
        res['total_s'] = time.perf_counter() - start
        res['stages_s'] = fitted.timings
        np.save(Path(out).with_suffix('.npy'), scores['influence'].double().numpy())
    res['peak_gib'] = peak_gib()
    Path(out).write_text(json.dumps(res))

def spawn(name, folder):
    "Run a case in a fresh process; return its figures."
    out = Path(folder) / f'{name}.json'
    subprocess.run([sys.executable, __file__, '--case', name, '--out', str(out)], check=True)
    res = json.loads(out.read_text())
    scores = out.with_suffix('.npy')
    if scores.exists(): res['scores'] = np.load(scores)
    return res

def report(res):
    "Print one case's figures."
    print(f"\n== {res['case']} ({res['params']:,} parameters; data and head {res['data_s']:.0f} s)")
    if 'ratio' in res:
        print(f"exact (δ=50), all instances: {res['exact_total_s']:.1f} s, "
              f"{res['exact_per_instance_s'] * 1e3:.2f} ms per instance")
        print(f"lissa (δ=50, scale 1e4, 1000 steps): {res['lissa_per_instance_s']:.2f} s per instance "
              f"(+{res['lissa_fixed_s']:.1f} s once for the C+1 fixed vectors)")
        print(f"lissa / exact time per instance: {res['ratio']:.0f}x")
        rel = [abs(a - b) / abs(b) for a, b in zip(res['lissa'], res['exact'])]
        print('lissa vs exact influence:', ', '.join(f'{a:.4g} vs {b:.4g}' for a, b in
              zip(res['lissa'], res['exact'])), f'(relative error ≤ {max(rel):.1%})')
    else:
        stages = ', '.join(f'{k} {v:.1f} s' for k, v in res['stages_s'].items())
        print(f"total {res['total_s']:.1f} s ({stages})")
    print(f"peak memory {res['peak_gib']:.2f} GiB")

def compare(fast, exact):
    "Print the agreement of two solvers' scores, with the largest disagreements."
    a, b = fast['scores'], exact['scores']
    rel = np.abs(a - b) / np.abs(b).max()
    print(f"\n== {fast['case']} vs {exact['case']}: Spearman {stats.spearmanr(a, b)[0]:.6f}, "
          f"Pearson {stats.pearsonr(a, b)[0]:.6f}, max |difference| / max |score| {rel.max():.2e}")
    for i in np.argsort(-np.abs(a - b))[:5]:
        print(f"  row {i}: {a[i]:.6g} vs {b[i]:.6g}")

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--case', choices=[*CASES, 'compare'], action='append')
    parser.add_argument('--out')
    args = parser.parse_args()
    if args.out: return run_case(args.case[0], args.out)
    names = args.case or DEFAULT
    pairs = COMPARE if 'compare' in names else [p for p in COMPARE if set(p) <= set(names)]
    names = [n for n in names if n != 'compare'] + [n for p in pairs for n in p]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in dict.fromkeys(names):
            results[name] = spawn(name, folder)
            report(results[name])
    for fast, exact in pairs: compare(results[fast], results[exact])

if __name__ == '__main__': main()
