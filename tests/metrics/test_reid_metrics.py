from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from neo.metrics.reid import (
    auroc,
    best_threshold,
    evaluate_rank,
    macro_f1,
    open_set_predictions,
    oscr,
    pairwise_distance,
    re_ranking,
)

# torchreid's python eval_market1501 on the seeded case of ``golden_rank_case`` (max_rank 10)
GOLDEN_CMC = [
    0.03333333507180214,
    0.13333334028720856,
    0.1666666716337204,
    0.2666666805744171,
    0.3333333432674408,
    0.4000000059604645,
    0.4333333373069763,
    0.46666666865348816,
    0.5666666626930237,
    0.6666666865348816,
]
GOLDEN_MAP = 0.1397429840982502

# torchreid's re_ranking of ``golden_rerank_case`` with k1=4, k2=2, lambda_value=0.3
GOLDEN_RERANK = [
    [0.92118376, 0.41418904, 0.94729251, 0.94478595, 0.83144498, 0.78526759, 0.71027476, 0.8816936,
     0.38796473],
    [0.60294843, 0.7215687, 0.9232924, 1, 0.34114665, 0.17149051, 0.17165664, 0.83446062,
     0.89673364],
    [0.92118376, 0.020314291, 0.95083803, 0.90403986, 0.86622655, 0.61181521, 0.65270406,
     0.82724422, 0.63248467],
    [0.064152323, 0.70319217, 0.76272488, 0.82820243, 0.54451817, 0.67464167, 0.62696373,
     0.69826943, 0.80876702],
    [0.696446, 0.74452919, 1, 0.96921754, 0.55420387, 0.56050807, 0.53802234, 0.94844031,
     0.57675314],
    [0.81417912, 0.75542998, 0.011565237, 0.16758543, 0.88566315, 0.86358279, 0.85167813,
     0.19199131, 0.83275199],
]  # fmt: skip


def loop_protocol(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """Market-1501 protocol, one query at a time, written from its description."""
    max_rank = min(max_rank, distmat.shape[1])
    curves, precisions = [], []
    for q in range(len(distmat)):
        order = np.argsort(distmat[q])
        same_view = (g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q])
        relevant = g_pids[order][~same_view] == q_pids[q]
        if not relevant.any():
            continue
        first = int(np.flatnonzero(relevant)[0])
        curves.append([1.0 if rank >= first else 0.0 for rank in range(max_rank)])
        hits, total = 0, 0.0
        for position, is_hit in enumerate(relevant):
            if is_hit:
                hits += 1
                total += hits / (position + 1)
        precisions.append(total / hits)
    if not curves:
        return None
    return np.mean(curves, axis=0), float(np.mean(precisions))


def random_case(rng, num_query, num_gallery, levels=None):
    if levels:  # few distinct distances: many ties
        distmat = rng.integers(0, levels, size=(num_query, num_gallery)).astype(np.float32)
    else:
        distmat = rng.random((num_query, num_gallery)).astype(np.float32)
    num_ids, num_cams = int(rng.integers(2, 10)), int(rng.integers(1, 4))
    return (
        distmat,
        rng.integers(0, num_ids, num_query),
        rng.integers(0, num_ids, num_gallery),
        rng.integers(0, num_cams, num_query),
        rng.integers(0, num_cams, num_gallery),
    )


def golden_rank_case():
    rng = np.random.default_rng(2024)
    distmat = rng.integers(0, 6, size=(30, 60)).astype(np.float32)
    q_pids, g_pids = rng.integers(0, 8, 30), rng.integers(0, 8, 60)
    q_camids, g_camids = rng.integers(0, 3, 30), rng.integers(0, 3, 60)
    return distmat, q_pids, g_pids, q_camids, g_camids


def golden_rerank_case():
    features = np.random.default_rng(7).random((15, 4))
    full = np.sqrt(((features[:, None] - features[None]) ** 2).sum(-1))
    return full[:6, 6:], full[:6, :6], full[6:, 6:]


@pytest.mark.parametrize("levels", [None, 2, 5])
def test_evaluate_rank_equals_per_query_loop(levels):
    rng = np.random.default_rng(levels or 0)
    for _ in range(40):
        case = random_case(rng, int(rng.integers(1, 30)), int(rng.integers(1, 60)), levels)
        max_rank = int(rng.integers(1, 20))
        expected = loop_protocol(*case, max_rank)
        if expected is None:  # no valid query
            with pytest.raises(ValueError, match="no query has a true match"):
                evaluate_rank(*case, max_rank=min(max_rank, case[0].shape[1]))
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cmc, mean_ap = evaluate_rank(*case, max_rank=max_rank)
        np.testing.assert_allclose(cmc, expected[0], rtol=1e-6)
        assert mean_ap == pytest.approx(expected[1], rel=1e-12)


def test_evaluate_rank_chunks_and_text_camera_ids():
    rng = np.random.default_rng(3)
    distmat, q_pids, g_pids, q_camids, g_camids = random_case(rng, 600, 40, levels=4)
    angles = np.array(["left", "right", "top"])
    cmc, mean_ap = evaluate_rank(
        distmat, q_pids, g_pids, angles[q_camids], angles[g_camids], max_rank=10
    )
    expected_cmc, expected_map = loop_protocol(distmat, q_pids, g_pids, q_camids, g_camids, 10)
    np.testing.assert_allclose(cmc, expected_cmc, rtol=1e-6)
    assert mean_ap == pytest.approx(expected_map, rel=1e-12)


def test_evaluate_rank_golden_values_from_torchreid():
    cmc, mean_ap = evaluate_rank(*golden_rank_case(), max_rank=10)
    assert cmc.dtype == np.float32
    assert cmc.tolist() == GOLDEN_CMC
    assert mean_ap == pytest.approx(GOLDEN_MAP, rel=1e-12)


def test_same_identity_same_camera_is_dropped():
    # the nearest gallery item is the query's identity in its own camera: dropped, so the
    # first true match is the other-camera one at kept rank 2
    distmat = np.array([[0.1, 0.2, 0.3]])
    cmc, mean_ap = evaluate_rank(distmat, [5], [5, 7, 5], [0], [0, 1, 1], max_rank=2)
    assert cmc.tolist() == [0.0, 1.0]
    assert mean_ap == pytest.approx(0.5)


def test_max_rank_beyond_gallery_warns_and_shrinks():
    distmat = np.array([[0.3, 0.1, 0.2], [0.1, 0.2, 0.3]])
    with pytest.warns(UserWarning, match="only 3 items"):
        cmc, mean_ap = evaluate_rank(distmat, [1, 2], [1, 2, 3], [0, 0], [1, 1, 1], max_rank=50)
    assert cmc.shape == (3,)
    assert cmc.tolist() == [0.0, 0.5, 1.0]  # query 0 finds id 1 at rank 3, query 1 at rank 2
    assert mean_ap == pytest.approx((1 / 3 + 1 / 2) / 2)


def test_short_kept_list_continues_at_one():
    distmat = np.array([[0.1, 0.2, 0.3, 0.4]])
    cmc, _ = evaluate_rank(distmat, [1], [1, 1, 1, 1], [0], [0, 0, 1, 0], max_rank=4)
    assert cmc.tolist() == [1.0, 1.0, 1.0, 1.0]


def test_no_valid_query_raises():
    distmat = np.zeros((2, 3))
    with pytest.raises(ValueError, match="no query has a true match"):
        evaluate_rank(distmat, [1, 2], [1, 3, 4], [0, 0], [0, 1, 1], max_rank=3)


def test_re_ranking_golden_values_and_shape():
    result = re_ranking(*golden_rerank_case(), k1=4, k2=2, lambda_value=0.3)
    assert result.shape == (6, 9)
    assert result.dtype == np.float32
    assert np.allclose(result, GOLDEN_RERANK, rtol=1e-5)


def test_re_ranking_with_lambda_one_is_the_normalised_distance():
    q_g, q_q, g_g = golden_rerank_case()
    full = np.block([[q_q, q_g], [q_g.T, g_g]]) ** 2
    normalised = (full / full.max(axis=0)).T[:6, 6:]
    result = re_ranking(q_g, q_q, g_g, k1=3, k2=1, lambda_value=1.0)
    np.testing.assert_allclose(result, normalised, rtol=1e-6)


def test_auroc_known_values():
    assert auroc([0.9, 0.8], [0.1, 0.2, 0.3]) == 1.0
    assert auroc([0.1, 0.2], [0.8, 0.9]) == 0.0
    assert auroc([0.5, 0.5], [0.5]) == 0.5
    assert auroc([0.9, 0.2], [0.5]) == 0.5
    with pytest.raises(ValueError, match="empty"):
        auroc([], [0.5])


def test_oscr_hand_computed_and_properties():
    # curve: (0,0) (0,1/3) (1/2,1/3) (1/2,2/3) (1,2/3) -> area 1/6 + 1/3
    assert oscr([0.9, 0.6, 0.4], [True, False, True], [0.7, 0.3]) == pytest.approx(0.5)
    assert oscr([0.9, 0.8], [True, True], [0.1, 0.2]) == pytest.approx(1.0)
    assert oscr([0.9, 0.8], [False, False], [0.1, 0.2]) == 0.0
    assert oscr([0.5], [True], [0.5]) == pytest.approx(0.5)  # a tie is a diagonal step
    rng = np.random.default_rng(0)
    known, unknown = np.round(rng.random(50), 1), np.round(rng.random(30), 1)
    all_correct = np.ones(50, dtype=bool)
    assert oscr(known, all_correct, unknown) == pytest.approx(auroc(known, unknown))
    some_correct = rng.random(50) < 0.6
    assert oscr(known, some_correct, unknown) < oscr(known, all_correct, unknown)
    with pytest.raises(ValueError, match="empty"):
        oscr([0.5], [True], [])


def test_macro_f1_hand_computed():
    # -1: tp1 fn1 -> 2/3; 1: tp1 fn1 -> 2/3; 2: tp1 fp1 -> 2/3; 3: fp1 -> 0
    assert macro_f1([1, 1, 2, -1, -1], [1, 2, 2, -1, 3]) == pytest.approx(0.5)
    assert macro_f1([4, 5], [4, 5]) == 1.0
    with pytest.raises(ValueError):
        macro_f1([1, 2], [1])


def test_open_set_predictions():
    result = open_set_predictions([3, 4, 5], [0.2, 0.5, 0.9], 0.5)
    assert result.tolist() == [-1, 4, 5]


def test_best_threshold_separates_known_from_unknown():
    true = [1, 2, 3, -1, -1, -1]
    predicted = [1, 2, 3, 1, 2, -1]
    scores = [0.8, 0.9, 0.7, 0.2, 0.3, 0.5]
    # 0.5 and 0.7 both give F1 1 (the 0.5 sample predicts -1 anyway): the lower one wins
    threshold, f1 = best_threshold(true, predicted, scores)
    assert (threshold, f1) == (0.5, 1.0)
    assert best_threshold([1, 2], [1, 2], [0.3, 0.4]) == (-np.inf, 1.0)


def test_best_threshold_with_quantile_candidates():
    rng = np.random.default_rng(1)
    true = rng.integers(-1, 5, 2000)
    scores = rng.random(2000) + (true >= 0)  # knowns score higher
    predicted = np.where(true >= 0, true, 2)
    threshold, f1 = best_threshold(true, predicted, scores, max_candidates=16)
    assert threshold in scores
    assert f1 == macro_f1(true, open_set_predictions(predicted, scores, threshold))
    assert f1 > macro_f1(true, predicted)


def test_pairwise_distance_metrics():
    query, gallery = torch.randn(4, 6), torch.randn(5, 6)
    euclidean = pairwise_distance(query, gallery)
    assert euclidean.shape == (4, 5) and euclidean.dtype == np.float32
    np.testing.assert_allclose(euclidean, torch.cdist(query, gallery).numpy() ** 2, atol=1e-4)
    cosine = pairwise_distance(query, gallery, metric="cosine")
    similarity = torch.nn.functional.cosine_similarity(query[:, None], gallery[None], dim=2)
    np.testing.assert_allclose(cosine, 1 - similarity.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="unknown distance metric"):
        pairwise_distance(query, gallery, metric="manhattan")
    with pytest.raises(ValueError, match="pairwise_distance needs"):
        pairwise_distance(query, torch.randn(5, 3))
