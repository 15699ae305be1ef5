"""End-to-end: params/quick.yaml on real CIFAR-10 JPEGs, resuming a killed sweep, bad input."""
import json, os, shutil
from pathlib import Path
import pandas as pd
import pytest
import yaml
from memnb.core import MemnbError
from memnb.sweep import conditions, load_study, run_sweep

from conftest import REPO


@pytest.fixture(scope='module')
def quick_study(tmp_path_factory, memnb_data):
    "Run params/quick.yaml into a temporary output root once for this module."
    root = tmp_path_factory.mktemp('quick')
    params = yaml.safe_load((REPO/'params'/'quick.yaml').read_text())
    params['output_root'] = str(root/'outputs')
    path = root/'quick.yaml'
    path.write_text(yaml.safe_dump(params))
    cwd = os.getcwd(); os.chdir(REPO)
    try: timings = run_sweep(path, progress=False)
    finally: os.chdir(cwd)
    return path, load_study(path), timings


def _table(study, kind):
    return pd.read_csv(Path(study['output_root'])/'cifar10'/'simclr'/f'error_table_{kind}.csv')


def test_error_tables_follow_from_predictions(quick_study):
    path, study, _ = quick_study
    for kind in ('uniform', 'normal'):
        table = _table(study, kind)
        assert table['β'].tolist() == [0.0, 0.5, 1.0]
        assert table.columns.tolist()[:7] == ['β', 'S', 'E on S', 'E/S', 'A', 'E on A', 'E/A']
        assert (table['S'] == 500).all()
        dirs = {c['BETA']: Path(c['OUTPUT_DIR']) for c in conditions(study) if c['NOISE'] == kind}
        clean = pd.read_parquet(dirs[0.0]/'predictions.parquet')
        in_a = clean['pred'] == clean['label']
        for _, row in table.iterrows():
            preds = pd.read_parquet(dirs[row['β']]/'predictions.parquet')
            wrong = preds['pred'] != preds['label']
            assert row['E on S'] == wrong.sum()
            assert row['E/S'] == pytest.approx(100 * wrong.mean())
            if row['β'] > 0:
                assert row['A'] == in_a.sum() and row['E on A'] == (wrong & in_a).sum()
                assert row['E/A'] == pytest.approx(100 * (wrong & in_a).sum() / in_a.sum())
            metrics = json.loads((dirs[row['β']]/'metrics.json').read_text())
            assert row['test acc'] == pytest.approx(100 * metrics['test_acc'])
        # a trained head beats chance (10 classes) on clean features
        assert table.loc[0, 'test acc'] > 15


def test_beta_zero_is_shared_by_both_noise_kinds(quick_study):
    _, study, _ = quick_study
    assert _table(study, 'uniform').iloc[0].equals(_table(study, 'normal').iloc[0])


def test_every_condition_is_complete_with_its_notebook(quick_study):
    _, study, timings = quick_study
    for cond in conditions(study):
        cdir = Path(cond['OUTPUT_DIR'])
        assert (cdir/'done.json').exists() and (cdir/'condition.ipynb').exists()
        assert not list(cdir.glob('.tmp-*'))
    assert {'data', 'ssl training', 'conditions: features', 'conditions: head', 'total'} <= set(timings)
    assert (Path(study['output_root'])/'cifar10'/'report.ipynb').exists()


def test_killed_sweep_resumes_without_redoing(quick_study):
    path, study, _ = quick_study
    conds = conditions(study)
    before = {kind: _table(study, kind) for kind in ('uniform', 'normal')}
    # a sweep killed while running the last condition: no done.json, a half-written notebook
    victim = Path(conds[-1]['OUTPUT_DIR'])
    (victim/'done.json').unlink()
    (victim/'condition.ipynb').rename(victim/'.tmp-999-condition.ipynb')
    stamps = {c['OUTPUT_DIR']: (Path(c['OUTPUT_DIR'])/'done.json').stat().st_mtime_ns for c in conds[:-1]}
    cwd = os.getcwd(); os.chdir(REPO)
    try: run_sweep(path, progress=False)
    finally: os.chdir(cwd)
    for c in conds[:-1]: assert (Path(c['OUTPUT_DIR'])/'done.json').stat().st_mtime_ns == stamps[c['OUTPUT_DIR']]
    assert (victim/'done.json').exists() and not list(victim.glob('.tmp-*'))  # the stale temporary is gone
    for kind in ('uniform', 'normal'): pd.testing.assert_frame_equal(_table(study, kind), before[kind])


@pytest.mark.parametrize('change, message', [
    ({'dataset': 'mnist'}, "`dataset` must be one of ['cifar10', 'cifar100', 'stl10']"),
    ({'encoder': 'vit'}, "`encoder` must be one of ['simclr', 'resnet50'], got 'vit'"),
    ({'noise_kinds': ['salt']}, "`noise_kinds` must be one of ['uniform', 'normal'], got 'salt'"),
    ({'betas': [0, float('inf')]}, "`betas` must be a finite number >= 0, got inf"),
    ({'betas': [0, -0.5]}, "`betas` must be a finite number >= 0, got -0.5"),
    ({'num_train': 50_001}, "`num_train`=50001 is larger than the 50000 train images of cifar10"),
    ({'num_test': 10_001}, "`num_test`=10001 is larger than the 10000 test images of cifar10"),
    ({'num_train': 5}, "`num_train`=5 is smaller than the 10 classes of cifar10"),
    ({'betas': 0.5}, "`betas` must be a list, e.g. [0.5], got 0.5"),
    ({'ssl': {'epoch': 1}}, "`ssl` has unknown settings ['epoch']"),
    ({'head': {'learning_rate': 0.1}}, "`head` has unknown settings ['learning_rate']"),
    ({'extra': {'FOO': 1}}, "`extra` has unknown notebook parameters ['FOO']"),
])
def test_bad_input_fails_before_any_work(tmp_path, memnb_data, change, message):
    params = {**yaml.safe_load((REPO/'params'/'quick.yaml').read_text()), **change, 'output_root': str(tmp_path/'out')}
    path = tmp_path/'bad.yaml'
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(MemnbError, match=None) as err: run_sweep(path, progress=False)
    assert message in str(err.value)
    assert not (tmp_path/'out').exists()


def test_missing_data_names_memnb_data(tmp_path, monkeypatch):
    monkeypatch.setenv('MEMNB_DATA', str(tmp_path))
    params = {**yaml.safe_load((REPO/'params'/'quick.yaml').read_text()), 'dataset': 'stl10', 'output_root': str(tmp_path/'out')}
    path = tmp_path/'stl.yaml'
    path.write_text(yaml.safe_dump(params))
    monkeypatch.setattr('memnb.data.TORCHVISION_ROOT', tmp_path/'tv')
    with pytest.raises(MemnbError) as err: run_sweep(path, progress=False)
    assert 'MEMNB_DATA' in str(err.value) and 'stl10/train/<class>/<image>' in str(err.value)
