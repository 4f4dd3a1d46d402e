"""seed_all: the generator states of torch.manual_seed/np/random, cheaply."""
import random

import numpy as np
import pytest
import torch

from decssl_mm.utils import rng


def _draws():
    return (torch.rand(5), np.random.rand(5), [random.random() for _ in
                                               range(5)])


@pytest.mark.parametrize('accelerator', [False, True])
def test_seed_all_matches_the_full_seeding(monkeypatch, accelerator):
    monkeypatch.setattr(rng, '_accelerator_present', lambda: accelerator)
    torch.manual_seed(1234)
    np.random.seed(1234)
    random.seed(1234)
    expected = _draws()
    torch.manual_seed(99)  # move every generator away
    np.random.seed(99)
    random.seed(99)
    _draws()
    rng.seed_all(1234)
    got = _draws()
    assert torch.equal(got[0], expected[0])
    assert np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]


def test_cpu_only_machine_takes_the_cpu_path():
    if torch.cuda.is_available():
        pytest.skip('an accelerator is present')
    assert rng._accelerator_present() is False
