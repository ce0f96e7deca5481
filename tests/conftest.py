import pytest
import torch


@pytest.fixture
def one_thread():
    """Single-threaded: these runs are made of tiny ops, which a second OpenMP thread only slows
    (by 10-100x on a shared, oversubscribed machine, where the threads spin-wait)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
