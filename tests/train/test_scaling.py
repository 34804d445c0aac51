"""The scaling study's subsets: nested, seeded, one per distinct size, and refused when they cannot be."""

import pytest

from train.scaling import nested_subsets

DOMAINS = [f"d{i:02d}" for i in range(29)]


def test_subsets_are_nested_and_sized_by_fraction():
    subsets = nested_subsets(DOMAINS, [0.1, 0.25, 0.5, 1.0], seed=0)
    assert [len(s) for s in subsets] == [3, 8, 15, 29]
    for small, large in zip(subsets, subsets[1:], strict=False):
        assert set(small) < set(large)
    assert set(subsets[-1]) == set(DOMAINS)


def test_subsets_are_seeded():
    assert nested_subsets(DOMAINS, [0.25], seed=1) == nested_subsets(list(reversed(DOMAINS)), [0.25], seed=1)
    assert nested_subsets(DOMAINS, [0.25], seed=1) != nested_subsets(DOMAINS, [0.25], seed=2)


def test_fractions_that_round_to_the_same_size_give_one_subset():
    assert [len(s) for s in nested_subsets(DOMAINS[:4], [0.01, 0.1, 0.25, 1.0])] == [1, 4]


@pytest.mark.parametrize("fractions", [[], [0.0], [1.5], [-0.2, 0.5]])
def test_bad_fractions_are_refused(fractions):
    with pytest.raises(ValueError, match="fractions"):
        nested_subsets(DOMAINS, fractions)


def test_no_domains_is_refused():
    with pytest.raises(ValueError, match="no general domains"):
        nested_subsets([], [0.5])
