"""The sweep's conditions on a Dask LocalCluster: ordering, resuming, failures, one real condition."""
import json, os, time
from pathlib import Path
import pandas as pd
import pytest
import yaml
from memnb.core import MemnbError
from memnb.distributed import run_conditions_dask
from memnb.sweep import check_study, conditions, condition_dir, is_complete, mark_complete

from conftest import REPO


def stand_in(cond):
    "Write when the condition started and ended into its folder, like a short run_condition."
    begin = time.time()
    time.sleep(0.2)
    cdir = Path(cond['OUTPUT_DIR'])
    cdir.mkdir(parents=True, exist_ok=True)
    (cdir/'ran.json').write_text(json.dumps({'begin': begin, 'end': time.time(), 'beta': cond['BETA']}))
    mark_complete(cond, time.time() - begin)
    return time.time() - begin


def failing_normal_beta0(cond):
    "Like stand_in, but the normal β = 0 condition fails."
    if cond['NOISE'] == 'normal' and cond['BETA'] == 0: raise RuntimeError('kernel died')
    return stand_in(cond)


def _study(root, betas=(0, 0.5, 1)):
    return conditions(check_study({'betas': list(betas), 'output_root': str(root)}))


def _ran(cond):
    path = Path(cond['OUTPUT_DIR'])/'ran.json'
    return json.loads(path.read_text()) if path.exists() else None


def test_beta_zero_finishes_before_the_betas_it_defines_A_for(tmp_path):
    conds = _study(tmp_path, (0, 0.2, 0.5, 1))
    seconds = run_conditions_dask(conds, 'local', run=stand_in, num_workers=3, progress=False)
    assert sorted(seconds) == sorted(c['OUTPUT_DIR'] for c in conds)
    assert all(s >= 0.2 for s in seconds.values())
    for kind in ('uniform', 'normal'):
        mine = [c for c in conds if c['NOISE'] == kind]
        zero = _ran(mine[0])
        assert mine[0]['BETA'] == 0
        for cond in mine[1:]: assert zero['end'] <= _ran(cond)['begin'], cond['OUTPUT_DIR']
    # results land where the local sweep puts them
    for cond in conds:
        expected = condition_dir(tmp_path, 'cifar10', 'simclr', cond['NOISE'], cond['BETA'])
        assert Path(cond['OUTPUT_DIR']) == expected and (expected/'ran.json').exists() and is_complete(cond)


def test_complete_conditions_are_skipped_unless_forced(tmp_path):
    conds = _study(tmp_path)
    run_conditions_dask(conds, 'local', run=stand_in, progress=False)
    first = {c['OUTPUT_DIR']: _ran(c)['begin'] for c in conds}
    assert run_conditions_dask(conds, 'local', run=stand_in, progress=False) == {}
    assert {c['OUTPUT_DIR']: _ran(c)['begin'] for c in conds} == first
    # only the β = 0.5 conditions incomplete: they run, against their complete β = 0
    for cond in conds:
        if cond['BETA'] == 0.5: (Path(cond['OUTPUT_DIR'])/'done.json').unlink()
    again = run_conditions_dask(conds, 'local', run=stand_in, progress=False)
    assert sorted(again) == sorted(c['OUTPUT_DIR'] for c in conds if c['BETA'] == 0.5)
    forced = run_conditions_dask(conds, 'local', run=stand_in, force=True, progress=False)
    assert len(forced) == 6 and all(_ran(c)['begin'] > first[c['OUTPUT_DIR']] for c in conds)


def test_a_failed_beta_zero_stops_its_noise_kind_only(tmp_path):
    conds = _study(tmp_path)
    with pytest.raises(RuntimeError) as err:
        run_conditions_dask(conds, 'local', run=failing_normal_beta0, progress=False)
    message = str(err.value)
    assert message.startswith('3 of 6 conditions failed')
    assert 'normal β=0.0' in message and 'kernel died' in message
    for cond in conds:
        assert (_ran(cond) is not None) == (cond['NOISE'] == 'uniform'), cond['OUTPUT_DIR']


@pytest.mark.parametrize('kwargs, message', [
    (dict(scheduler='yarn'),
     "`scheduler` must be 'local' or a scheduler address such as 'tcp://host:8786', got 'yarn'"),
    (dict(scheduler=None), "`scheduler` must be 'local' or a scheduler address"),
    (dict(num_workers=0), "`num_workers` must be a positive integer, got 0"),
])
def test_bad_input_names_the_parameter(tmp_path, kwargs, message):
    with pytest.raises(MemnbError) as err:
        run_conditions_dask(_study(tmp_path), run=stand_in, progress=False, **kwargs)
    assert message in str(err.value)
    assert not list(tmp_path.rglob('ran.json'))


def test_a_beta_without_its_reference_is_refused_before_running(tmp_path):
    conds = [c for c in _study(tmp_path) if c['BETA'] != 0]
    with pytest.raises(MemnbError) as err: run_conditions_dask(conds, run=stand_in, progress=False)
    assert '`conds`: uniform β=0.5 needs its reference condition' in str(err.value)
    assert not list(tmp_path.rglob('ran.json'))


def test_a_real_quick_condition_runs_on_a_local_cluster(tmp_path, memnb_data, monkeypatch):
    "The β = 0 normal condition of params/quick.yaml, through papermill on a LocalCluster worker."
    params = yaml.safe_load((REPO/'params'/'quick.yaml').read_text())
    params.update(output_root=str(tmp_path/'outputs'), noise_kinds=['normal'], betas=[0.0])
    monkeypatch.chdir(REPO)
    (cond,) = conditions(check_study(params))
    seconds = run_conditions_dask([cond], 'local', progress=False)
    cdir = Path(cond['OUTPUT_DIR'])
    assert list(seconds) == [cond['OUTPUT_DIR']] and seconds[cond['OUTPUT_DIR']] > 0
    assert is_complete(cond) and (cdir/'condition.ipynb').exists() and not list(cdir.glob('.tmp-*'))
    predictions = pd.read_parquet(cdir/'predictions.parquet')
    assert len(predictions) == 500 and predictions['in_A'].equals(predictions['pred'] == predictions['label'])
    metrics = json.loads((cdir/'metrics.json').read_text())
    assert metrics['num_train'] == 500 and 0.15 < metrics['test_acc'] <= 1  # beats chance (10 classes)
