import os

import pytest
import torch

# One thread per test process, inherited by the subprocesses tests start: on a shared
# 2-core machine, oversubscribed OpenMP threads slow training down by an order of magnitude.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
