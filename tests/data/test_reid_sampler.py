"""IdentityBatchSampler: P x K batches, determinism, ranks, unknowns and bad input."""

from __future__ import annotations

import warnings
from collections import Counter

import pytest

from neo.data.reid.sampler import IdentityBatchSampler

# identity i has i + 2 images (2..11); two unknown (-1) samples in between
LABELS = [i for i in range(10) for _ in range(i + 2)]
LABELS[5:5] = [-1, -1]


def _sampler(**kwargs) -> IdentityBatchSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return IdentityBatchSampler(LABELS, **{"identities_per_batch": 3, **kwargs})


def test_batches_are_p_distinct_identities_times_k_images():
    sampler = _sampler(images_per_identity=4)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0
    for batch in batches:
        counts = Counter(LABELS[i] for i in batch)
        assert len(batch) == 12 and len(counts) == 3 and set(counts.values()) == {4}
    used = [i for batch in batches for i in batch]
    # without replacement, an index appears at most once per epoch (identity 0..1 repeat theirs)
    repeated = {LABELS[i] for i, n in Counter(used).items() if n > 1}
    assert repeated <= {0, 1}


def test_identities_with_fewer_than_k_images_are_counted_in_one_warning():
    with pytest.warns(UserWarning) as record:
        sampler = IdentityBatchSampler(LABELS, identities_per_batch=3, images_per_identity=4)
    messages = [str(w.message) for w in record if "replacement" in str(w.message)]
    assert messages == [
        "IdentityBatchSampler: 2 identities have fewer than 4 images; sampled with replacement"
    ]
    small = [b for batch in sampler for b in batch if LABELS[b] in (0, 1)]
    assert small and set(small) <= {i for i, label in enumerate(LABELS) if label in (0, 1)}


def test_no_warning_when_every_identity_has_k_images():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        IdentityBatchSampler(LABELS, identities_per_batch=3, images_per_identity=2)


def test_unknown_labels_are_never_drawn():
    unknown = {i for i, label in enumerate(LABELS) if label < 0}
    for epoch in range(3):
        sampler = _sampler(images_per_identity=2)
        sampler.set_epoch(epoch)
        assert not unknown & {i for batch in sampler for i in batch}


def test_deterministic_per_seed_and_epoch():
    a, b, c = _sampler(seed=1), _sampler(seed=1), _sampler(seed=2)
    assert list(a) == list(b) and list(a) == list(a)
    assert list(a) != list(c)
    before = list(a)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) != before and list(a) == list(b)
    a.set_epoch(0)
    assert list(a) == before


def test_two_ranks_get_disjoint_shares_of_equal_length():
    for drop_last in (True, False):
        whole = _sampler(drop_last=drop_last)
        ranks = [_sampler(drop_last=drop_last, num_replicas=2, rank=r) for r in (0, 1)]
        for epoch in (0, 3):
            for s in (whole, *ranks):
                s.set_epoch(epoch)
            shares = [list(s) for s in ranks]
            assert len(shares[0]) == len(shares[1]) == len(ranks[0]) == len(ranks[1]) > 0
            everything = list(whole)
            if drop_last:
                assert not {tuple(b) for b in shares[0]} & {tuple(b) for b in shares[1]}
                assert len(shares[0]) == len(everything) // 2
            assert {tuple(b) for s in shares for b in s} == {tuple(b) for b in everything}


def test_drop_last_keeps_or_drops_the_smaller_last_batch():
    kept, dropped = _sampler(drop_last=False), _sampler(drop_last=True)
    identities = sorted(len({LABELS[i] for i in b}) for b in kept)
    assert len(kept) == len(dropped) + 1 and identities[0] < 3 and identities[1] == 3
    assert all(len(b) == 12 for b in dropped)


def test_too_few_identities_and_bad_arguments():
    with pytest.raises(ValueError, match=r"10 identities .* fewer than identities_per_batch=11"):
        _sampler(identities_per_batch=11)
    with pytest.raises(ValueError, match="must be >= 1"):
        _sampler(images_per_identity=0)
    with pytest.raises(ValueError, match="rank 2 is not in"):
        _sampler(num_replicas=2, rank=2)
