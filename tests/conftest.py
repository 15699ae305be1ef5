"""Shared fixtures. Tests that need real images fail (never skip) when the data are missing."""
import os
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope='session')
def memnb_data() -> Path:
    "The offline data folder named by MEMNB_DATA; fail the test when it is missing."
    root = os.environ.get('MEMNB_DATA')
    if not root or not (Path(root)/'cifar10'/'train').is_dir():
        pytest.fail(f"MEMNB_DATA must name a folder holding cifar10/train (got {root!r}); "
                    "unpack ../shared/data/cifar10-jpg.tar.gz there (see README).")
    return Path(root)
