"""Re-identification metrics: retrieval (CMC, mAP), k-reciprocal re-ranking and open-set measures.

Retrieval follows the Market-1501 protocol (as torchreid's ``evaluate_rank``): every query ranks
the whole gallery by ascending distance (``np.argsort`` with its default sort kind, so ties resolve
as there); gallery items with the query's identity *and* camera are dropped from its list (the
same person seen by the same camera is too easy a match); a query whose list has no item of its
identity left is skipped. On the kept list:

- CMC (cumulative matching characteristic): ``cmc[r]`` is the share of valid queries with a true
  match among their first ``r + 1`` results (rank-1 accuracy is ``cmc[0]``).
- AP (average precision) of a query: the mean, over the positions ``k`` of its true matches, of the
  precision of the first ``k + 1`` results; mAP is the mean AP over valid queries.

``re_ranking`` is the k-reciprocal encoding of Zhong et al. (CVPR 2017) in its standard form
(squared input distances normalised by their column maximum, float32, Jaccard distance of the
k-reciprocal sets blended with the original distance).

Open-set measures treat identities absent from the training set as *unknown* (label ``-1``):

- AUROC: the probability that a known sample scores higher than an unknown one (ties count half).
- OSCR (open-set classification rate): the area under the curve of the share of known samples
  accepted *and* correctly identified against the share of unknown samples accepted, as the
  acceptance threshold on the score sweeps from high to low.
- macro-F1: the unweighted mean F1 over every label (``-1`` included) of the true and predicted
  labels, after predictions with a score below a threshold became ``-1``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.sparse
import torch
from scipy.stats import rankdata

UNKNOWN_LABEL = -1
_QUERY_CHUNK = 256


def pairwise_distance(
    query: torch.Tensor, gallery: torch.Tensor, metric: str = "euclidean"
) -> np.ndarray:
    """Distances between every query and every gallery feature.

    ``euclidean`` is the *squared* euclidean distance ``|q|² + |g|² − 2 q·g`` (as torchreid's
    ``euclidean_squared_distance``; round-off may leave tiny negative values), ``cosine`` is
    ``1 − cos(q, g)`` of the L2-normalised features.

    Args:
        query: ``(N, D)`` query features.
        gallery: ``(M, D)`` gallery features.
        metric: ``"euclidean"`` or ``"cosine"``.

    Returns:
        float32 array of shape ``(N, M)``.
    """
    if query.dim() != 2 or gallery.dim() != 2 or query.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"pairwise_distance needs (N, D) and (M, D) features, got {tuple(query.shape)} "
            f"and {tuple(gallery.shape)}"
        )
    query = query.detach().float()
    gallery = gallery.detach().float().to(query.device)
    if metric == "euclidean":
        query_norms = query.pow(2).sum(dim=1, keepdim=True)
        gallery_norms = gallery.pow(2).sum(dim=1, keepdim=True).t()
        distances = torch.addmm(query_norms + gallery_norms, query, gallery.t(), alpha=-2)
    elif metric == "cosine":
        query = torch.nn.functional.normalize(query, p=2, dim=1)
        gallery = torch.nn.functional.normalize(gallery, p=2, dim=1)
        distances = 1 - query @ gallery.t()
    else:
        raise ValueError(f"unknown distance metric {metric!r}: use 'euclidean' or 'cosine'")
    return distances.cpu().numpy().astype(np.float32, copy=False)


def evaluate_rank(
    distmat: np.ndarray,
    q_pids: Sequence | np.ndarray,
    g_pids: Sequence | np.ndarray,
    q_camids: Sequence | np.ndarray,
    g_camids: Sequence | np.ndarray,
    max_rank: int = 50,
) -> tuple[np.ndarray, float]:
    """CMC curve and mAP of a query-gallery distance matrix (Market-1501 protocol).

    Queries are processed in chunks with whole-matrix operations. A kept list shorter than
    ``max_rank`` (many same-camera items dropped) continues its CMC at 1.

    Args:
        distmat: ``(num_query, num_gallery)`` distances, smaller is more similar.
        q_pids: identity of each query.
        g_pids: identity of each gallery item.
        q_camids: camera of each query (any comparable values, e.g. angle names).
        g_camids: camera of each gallery item.
        max_rank: length of the CMC curve; the gallery size when the gallery is smaller (warned).

    Returns:
        The float32 CMC curve of length ``max_rank`` and the mAP.
    """
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery), got shape {distmat.shape}")
    num_query, num_gallery = distmat.shape
    if q_pids.shape != (num_query,) or q_camids.shape != (num_query,):
        raise ValueError(f"q_pids and q_camids need {num_query} entries (distmat rows)")
    if g_pids.shape != (num_gallery,) or g_camids.shape != (num_gallery,):
        raise ValueError(f"g_pids and g_camids need {num_gallery} entries (distmat columns)")
    if num_gallery < max_rank:
        warnings.warn(
            f"evaluate_rank: gallery has only {num_gallery} items, CMC stops at rank {num_gallery}",
            stacklevel=2,
        )
        max_rank = num_gallery

    first_hit_counts = np.zeros(max_rank + 1, dtype=np.int64)
    average_precisions = [np.empty(0)]
    for start in range(0, num_query, _QUERY_CHUNK):
        rows = slice(start, start + _QUERY_CHUNK)
        first_hits, chunk_ap = _rank_chunk(
            distmat[rows], q_pids[rows], g_pids, q_camids[rows], g_camids
        )
        first_hit_counts += np.bincount(np.minimum(first_hits, max_rank), minlength=max_rank + 1)
        average_precisions.append(chunk_ap)
    average_precisions = np.concatenate(average_precisions)
    num_valid = len(average_precisions)
    if num_valid == 0:
        raise ValueError(
            "evaluate_rank: no query has a true match in the gallery (after dropping items of "
            "the same identity and camera); check the query and gallery identities and cameras"
        )
    cmc = np.cumsum(first_hit_counts[:max_rank]).astype(np.float32) / np.float32(num_valid)
    return cmc, float(np.mean(average_precisions))


def _rank_chunk(
    distances: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Rank of the first true match and AP of each valid query of a chunk of rows."""
    order = np.argsort(distances, axis=1)
    same_pid = g_pids[order] == q_pids[:, None]
    kept = ~(same_pid & (g_camids[order] == q_camids[:, None]))
    hits = same_pid & kept
    valid = hits.any(axis=1)
    kept, hits = kept[valid], hits[valid]
    kept_rank = np.cumsum(kept, axis=1)  # 1-based position in the kept list
    hits_so_far = np.cumsum(hits, axis=1)
    first_hits = kept_rank[np.arange(len(hits)), np.argmax(hits, axis=1)] - 1
    precision = np.divide(hits_so_far, kept_rank, out=np.zeros(hits.shape), where=hits)
    average_precisions = precision.sum(axis=1) / hits_so_far[:, -1]
    return first_hits, average_precisions


def re_ranking(
    q_g_dist: np.ndarray,
    q_q_dist: np.ndarray,
    g_g_dist: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
) -> np.ndarray:
    """k-reciprocal re-ranking of query-gallery distances (Zhong et al., CVPR 2017).

    The distances of all ``N = num_query + num_gallery`` items are squared, divided by their
    column maximum and transposed (float32). Each item's k-reciprocal set (items within each
    other's ``k1 + 1`` nearest) grows by the ``round(k1 / 2)``-reciprocal set of a member when
    more than 2/3 of that set is already in it; the set becomes a weight vector ``exp(−d)``
    normalised to sum 1, averaged over the ``k2`` nearest items (query expansion, when ``k2 > 1``).
    The result blends the Jaccard distance of these vectors with the normalised distance:
    ``(1 − lambda_value) · jaccard + lambda_value · original``. Memory grows as ``N²``.

    Args:
        q_g_dist: ``(num_query, num_gallery)`` distances.
        q_q_dist: ``(num_query, num_query)`` distances.
        g_g_dist: ``(num_gallery, num_gallery)`` distances.
        k1: neighbourhood size of the k-reciprocal sets.
        k2: neighbourhood size of the query expansion.
        lambda_value: weight of the original distance in the result.

    Returns:
        float32 re-ranked distances of shape ``(num_query, num_gallery)``.
    """
    q_g_dist, q_q_dist, g_g_dist = (np.asarray(d) for d in (q_g_dist, q_q_dist, g_g_dist))
    num_query, num_gallery = q_g_dist.shape
    if q_q_dist.shape != (num_query, num_query) or g_g_dist.shape != (num_gallery, num_gallery):
        raise ValueError(
            f"re_ranking: q_q_dist must be {(num_query, num_query)} and g_g_dist "
            f"{(num_gallery, num_gallery)}, got {q_q_dist.shape} and {g_g_dist.shape}"
        )
    full = np.block([[q_q_dist, q_g_dist], [q_g_dist.T, g_g_dist]])
    squared = np.power(full, 2).astype(np.float32)
    normalised = np.ascontiguousarray((squared / np.max(squared, axis=0)).T)
    num_all = normalised.shape[0]
    half_k1 = int(np.around(k1 / 2.0))
    nearest = _nearest(normalised, max(k1 + 1, k2))

    reciprocal = _reciprocal_sets(nearest[:, : k1 + 1])
    half_reciprocal = _reciprocal_sets(nearest[:, : half_k1 + 1])
    members = _expanded_sets(reciprocal, half_reciprocal, num_all)
    weights = _set_weights(members, normalised)
    if k2 != 1:
        weights = _query_expansion(weights, nearest[:, :k2])

    jaccard = _jaccard_distance(weights, num_query)
    final = jaccard * (1 - lambda_value) + normalised[:num_query] * lambda_value
    return final[:, num_query:]


def _nearest(distances: np.ndarray, count: int) -> np.ndarray:
    """The first ``count`` columns of each row's ``np.argsort`` (int32), in row chunks."""
    count = min(count, distances.shape[1])
    return np.concatenate(
        [
            np.argsort(distances[start : start + _QUERY_CHUNK], axis=1)[:, :count]
            for start in range(0, len(distances), _QUERY_CHUNK)
        ]
    ).astype(np.int32)


def _reciprocal_sets(nearest: np.ndarray) -> np.ndarray:
    """Each item's neighbours that have it among their own neighbours; -1 elsewhere."""
    items = np.arange(len(nearest))[:, None, None]
    mutual = (nearest[nearest] == items).any(axis=2)
    return np.where(mutual, nearest, -1)


def _expanded_sets(
    reciprocal: np.ndarray, half_reciprocal: np.ndarray, num_all: int
) -> scipy.sparse.csr_matrix:
    """Boolean membership of the expanded k-reciprocal set of every item (rows)."""
    row_ids, col_ids = [], []
    for start in range(0, len(reciprocal), _QUERY_CHUNK):
        own = reciprocal[start : start + _QUERY_CHUNK]
        candidates = np.where(own[:, :, None] >= 0, half_reciprocal[own], -1)
        in_own = (candidates[..., None] == own[:, None, None, :]).any(axis=3) & (candidates >= 0)
        accepted = in_own.sum(axis=2) > 2.0 / 3 * (candidates >= 0).sum(axis=2)
        added = np.where(accepted[..., None], candidates, -1).reshape(len(own), -1)
        chunk_sets = np.concatenate([own, added], axis=1)
        rows, slots = np.nonzero(chunk_sets >= 0)
        row_ids.append(rows + start)
        col_ids.append(chunk_sets[rows, slots])
    rows, cols = np.concatenate(row_ids), np.concatenate(col_ids)
    membership = scipy.sparse.csr_matrix(
        (np.ones(len(rows), dtype=bool), (rows, cols)), shape=(num_all, num_all)
    )
    membership.sum_duplicates()
    return membership


def _set_weights(members: scipy.sparse.csr_matrix, distances: np.ndarray) -> np.ndarray:
    """Dense ``exp(−d)`` weights of each item's set, normalised to sum 1 per row (float32)."""
    weights = np.zeros(distances.shape, dtype=np.float32)
    for item in range(members.shape[0]):
        columns = members.indices[members.indptr[item] : members.indptr[item + 1]]
        row_weights = np.exp(-distances[item, columns])
        weights[item, columns] = row_weights / np.sum(row_weights)
    return weights


def _query_expansion(weights: np.ndarray, nearest: np.ndarray) -> np.ndarray:
    """Each row replaced by the mean of the rows of its nearest items."""
    expanded = np.empty_like(weights)
    for start in range(0, len(weights), _QUERY_CHUNK):
        rows = slice(start, start + _QUERY_CHUNK)
        expanded[rows] = np.mean(weights[nearest[rows]], axis=1)
    return expanded


def _jaccard_distance(weights: np.ndarray, num_query: int) -> np.ndarray:
    """``1 − Σmin / Σmax`` of the query rows of ``weights`` against every row (float32)."""
    by_column = np.ascontiguousarray(weights.T)
    jaccard = np.empty((num_query, len(weights)), dtype=np.float32)
    for query in range(num_query):
        columns = np.flatnonzero(weights[query])
        overlap = np.minimum(by_column[columns], weights[query, columns][:, None]).sum(axis=0)
        jaccard[query] = 1 - overlap / (2.0 - overlap)
    return jaccard


def _check_scores(name: str, scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.size == 0:
        raise ValueError(f"{name} is empty: the open-set measures need known and unknown samples")
    return scores


def auroc(
    known_scores: Sequence[float] | np.ndarray, unknown_scores: Sequence[float] | np.ndarray
) -> float:
    """Area under the ROC curve of known (positive, higher score) against unknown samples.

    Args:
        known_scores: score of each sample of a known identity.
        unknown_scores: score of each sample of an unknown identity.

    Returns:
        The probability that a known sample outscores an unknown one, ties counted half.
    """
    known = _check_scores("known_scores", known_scores)
    unknown = _check_scores("unknown_scores", unknown_scores)
    ranks = rankdata(np.concatenate([known, unknown]))
    wins = ranks[: len(known)].sum() - len(known) * (len(known) + 1) / 2
    return float(wins / (len(known) * len(unknown)))


def oscr(
    known_scores: Sequence[float] | np.ndarray,
    known_correct: Sequence[bool] | np.ndarray,
    unknown_scores: Sequence[float] | np.ndarray,
) -> float:
    """Open-set classification rate: area under the CCR against FPR curve.

    For a threshold ``t``, CCR is the share of known samples with ``score >= t`` whose identity
    is also correct, FPR the share of unknown samples with ``score >= t``. The curve runs from
    ``(0, 0)`` through every distinct score (tied samples enter together) to ``(1, accuracy)``
    and is integrated with the trapezoid rule.

    Args:
        known_scores: score of each sample of a known identity.
        known_correct: whether each known sample's predicted identity is right.
        unknown_scores: score of each sample of an unknown identity.

    Returns:
        The area, 1.0 for perfectly separated scores and all knowns correct.
    """
    known = _check_scores("known_scores", known_scores)
    unknown = _check_scores("unknown_scores", unknown_scores)
    correct = np.asarray(known_correct, dtype=bool).reshape(-1)
    if correct.shape != known.shape:
        raise ValueError(f"known_correct has {correct.size} entries, known_scores {known.size}")
    thresholds = np.unique(np.concatenate([known, unknown]))[::-1]
    correct_sorted = np.sort(known[correct])
    unknown_sorted = np.sort(unknown)
    accepted_correct = len(correct_sorted) - np.searchsorted(correct_sorted, thresholds, "left")
    accepted_unknown = len(unknown_sorted) - np.searchsorted(unknown_sorted, thresholds, "left")
    ccr = np.concatenate([[0.0], accepted_correct / len(known)])
    fpr = np.concatenate([[0.0], accepted_unknown / len(unknown)])
    return float(np.trapezoid(ccr, fpr))


def macro_f1(true: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray) -> float:
    """Macro-averaged F1 over the union of true and predicted labels (-1 is a label too).

    Args:
        true: true label of each sample.
        predicted: predicted label of each sample.

    Returns:
        The mean over labels of ``2·tp / (2·tp + fp + fn)`` (0 for a label never right).
    """
    true, predicted = np.asarray(true).reshape(-1), np.asarray(predicted).reshape(-1)
    if true.shape != predicted.shape or true.size == 0:
        raise ValueError(
            f"macro_f1 needs equally long, non-empty labels, got {true.size} and {predicted.size}"
        )
    labels, codes = np.unique(np.concatenate([true, predicted]), return_inverse=True)
    true_codes, predicted_codes = codes[: len(true)], codes[len(true) :]
    true_counts = np.bincount(true_codes, minlength=len(labels))
    predicted_counts = np.bincount(predicted_codes, minlength=len(labels))
    true_positives = np.bincount(true_codes[true_codes == predicted_codes], minlength=len(labels))
    f1 = 2 * true_positives / (true_counts + predicted_counts)
    return float(f1.mean())


def open_set_predictions(
    predicted: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, threshold: float
) -> np.ndarray:
    """Predicted identities, with -1 (unknown) where the score is below the threshold.

    Args:
        predicted: predicted identity of each sample (e.g. its nearest gallery identity).
        scores: confidence of each prediction, higher is surer.
        threshold: smallest score that keeps a prediction.

    Returns:
        int64 array of identities or -1.
    """
    predicted, scores = np.asarray(predicted).reshape(-1), np.asarray(scores).reshape(-1)
    if predicted.shape != scores.shape:
        raise ValueError(f"{predicted.size} predictions but {scores.size} scores")
    return np.where(scores >= threshold, predicted, UNKNOWN_LABEL).astype(np.int64)


def best_threshold(
    true: Sequence[int] | np.ndarray,
    predicted: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    max_candidates: int = 512,
) -> tuple[float, float]:
    """The score threshold that maximises the macro-F1 of the open-set predictions.

    Candidates are ``-inf`` (keep every prediction) and the distinct scores, or
    ``max_candidates`` evenly spaced quantiles of the scores when there are more.

    Args:
        true: true label of each sample (-1 for unknown identities).
        predicted: predicted identity of each sample.
        scores: confidence of each prediction, higher is surer.
        max_candidates: most thresholds tried.

    Returns:
        The threshold (the lowest among equally good ones) and its macro-F1.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    candidates = np.unique(scores)
    if len(candidates) > max_candidates:
        levels = np.linspace(0.0, 1.0, max_candidates)
        candidates = np.unique(np.quantile(scores, levels, method="lower"))
    candidates = np.concatenate([[-np.inf], candidates])
    results = [macro_f1(true, open_set_predictions(predicted, scores, t)) for t in candidates]
    best = int(np.argmax(results))  # candidates ascend, so the first maximum is the lowest
    return float(candidates[best]), results[best]
