"""Client sampling and the sharing of clients among ranks."""
import numpy as np
import pytest

from decssl_mm.federated import UniformClientSampler, assign_clients_to_ranks


@pytest.mark.parametrize('p,k', [(0.25, 20), (0.1, 20), (0.5, 7), (1.0, 9)])
def test_participation_draws_round_p_k(p, k):
    s = UniformClientSampler(participation=p, seed=3)
    sizes = np.full(k, 10)
    for r in range(5):
        ids = s.sample(r, sizes)
        assert len(ids) == max(1, round(p * k))
        assert len(set(ids.tolist())) == len(ids)
        assert ids.min() >= 0 and ids.max() < k
    # a pure function of (seed, round): same draw again
    assert (s.sample(2, sizes) == UniformClientSampler(
        participation=p, seed=3).sample(2, sizes)).all()


def test_rounds_draw_different_clients():
    s = UniformClientSampler(clients_per_round=3, seed=0)
    draws = {tuple(s.sample(r, np.ones(20))) for r in range(10)}
    assert len(draws) > 5


def test_weighted_sampling_prefers_big_clients():
    s = UniformClientSampler(clients_per_round=1, weighted=True, seed=0)
    sizes = np.array([1, 1, 1, 1000])
    picks = [int(s.sample(r, sizes)[0]) for r in range(50)]
    assert picks.count(3) > 40


@pytest.mark.parametrize('kwargs,match', [
    (dict(participation=0.0), 'participation'),
    (dict(participation=1.5), 'participation'),
    (dict(clients_per_round=0), 'clients_per_round'),
    (dict(participation=0.5, clients_per_round=2), 'only one'),
])
def test_bad_sampler_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UniformClientSampler(**kwargs)


def test_more_clients_per_round_than_clients():
    with pytest.raises(ValueError, match='clients_per_round'):
        UniformClientSampler(clients_per_round=11).num_sampled(10)


def test_rank_assignment_balances_work():
    shares = assign_clients_to_ranks([0, 1, 2, 3], [10, 1, 9, 2], 2)
    loads = [sum({0: 10, 1: 1, 2: 9, 3: 2}[k] for k in s) for s in shares]
    assert sorted(k for s in shares for k in s) == [0, 1, 2, 3]
    assert abs(loads[0] - loads[1]) <= 2


def test_more_ranks_than_clients_leaves_ranks_idle():
    shares = assign_clients_to_ranks([5], [3], 4)
    assert shares == [[5], [], [], []]
