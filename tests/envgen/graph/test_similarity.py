"""The thresholded all-pairs search equals brute force, whatever the pruning parameter, and scales."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from envgen.graph.similarity import normalise, similar_pairs


def clustered_matrix(n_clusters: int, per: int, seed: int) -> sp.csr_matrix:
    """Rows in clusters sharing private terms, plus common terms every row has (the hard case)."""
    rng = np.random.default_rng(seed)
    rows, cols, vals = [], [], []
    vocab_per = 6
    n_common = 4
    for c in range(n_clusters):
        for r in range(per):
            row = c * per + r
            private = rng.choice(vocab_per, size=3, replace=False) + n_common + c * vocab_per
            common = rng.choice(n_common, size=2, replace=False)
            for col in [*private, *common]:
                rows.append(row)
                cols.append(int(col))
                vals.append(float(rng.uniform(0.2, 1.0)))
    shape = (n_clusters * per, n_common + n_clusters * vocab_per)
    return sp.csr_matrix((vals, (rows, cols)), shape=shape)


def brute(x, threshold):
    dense = normalise(x)
    dense = dense.toarray() if sp.issparse(dense) else dense
    full = dense.astype(np.float64) @ dense.T.astype(np.float64)
    i, j = np.nonzero(np.triu(full, 1) > threshold)
    return full, {(a, b) for a, b in zip(i.tolist(), j.tolist(), strict=True)}


@pytest.mark.parametrize("threshold", [0.2, 0.4, 0.7])
@pytest.mark.parametrize("rare_df", [None, 1, 3, 10**9])
def test_sparse_search_equals_brute_force(threshold, rare_df):
    x = clustered_matrix(n_clusters=12, per=9, seed=1)
    full, want = brute(x, threshold)
    i, j, v = similar_pairs(x, threshold, rare_df=rare_df, chunk=17)
    got = set(zip(i.tolist(), j.tolist(), strict=True))
    near_threshold = {p for p in got ^ want if abs(full[p] - threshold) < 1e-5}
    assert got ^ want == near_threshold
    assert len(want) > 30  # the case is not trivial
    np.testing.assert_allclose(v, full[i, j], atol=1e-5)
    assert (i < j).all()


def test_dense_vectors_equal_brute_force():
    x = np.random.default_rng(0).normal(size=(120, 16)) + 1.0
    full, want = brute(x, 0.8)
    i, j, v = similar_pairs(x, 0.8, chunk=25)
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == want
    np.testing.assert_allclose(v, full[i, j], atol=1e-5)


def test_common_terms_make_rows_heavy_but_answer_is_unchanged():
    """Rows made only of common terms can only be matched by the all-columns pass."""
    x = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]], dtype=float))
    i, j, _ = similar_pairs(x, 0.45, rare_df=1)
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == {(0, 1), (0, 2), (1, 2)}


def test_fewer_than_two_rows():
    assert all(len(a) == 0 for a in similar_pairs(sp.csr_matrix((1, 3)), 0.1))
