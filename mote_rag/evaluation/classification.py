"""Classification by logistic regression on frozen embeddings, following MTEB's protocol
(AbsTaskClassification + logRegClassificationEvaluator):

- `n_experiments` = 10 runs; in each, the training split is undersampled to `samples_per_label` = 8
  texts per label (a fresh shuffle per run from one seeded generator, seed 42);
- sklearn LogisticRegression(max_iter=100) on the raw embeddings, predict the whole test split;
- accuracy (main score) and macro-F1, averaged over the runs (std reported too).
Only the union of the sampled training texts is embedded, so a 67k-row training split stays cheap.

Sets without a split (MR, CR, SUBJ, MPQA; SentEval uses 10-fold CV): a stratified sample of `max_rows`
rows (default suite: 2,048, MTEB's cap on test sets) is split by StratifiedKFold(10, shuffle, seed 42);
each fold is one experiment: test = the fold, train = `samples_per_label` per label drawn from the other
nine folds. Same classifier and scores, and the cost is bounded by `max_rows` embeddings.
`max_rows` on a set with a test split limits the test split (stratified).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..readers import LabelledTexts, load_labelled_texts

SEED = 42


def stratified_subset(labels: list[str], n: int | None, seed: int = SEED) -> np.ndarray:
    """Indices of a label-stratified sample of size n (all indices when n is None or large enough)."""
    total = len(labels)
    if not n or total <= n:
        return np.arange(total)
    from sklearn.model_selection import train_test_split

    idx = np.arange(total)
    try:
        keep, _ = train_test_split(idx, train_size=n, stratify=labels, random_state=seed)
    except ValueError:  # a label with a single row cannot be stratified: plain seeded sample
        keep = np.random.default_rng(seed).choice(idx, size=n, replace=False)
    return np.sort(keep)


def undersample(labels: np.ndarray, pool: np.ndarray, samples_per_label: int, rng: np.random.RandomState) -> np.ndarray:
    """MTEB's _undersample_data: shuffle, then keep the first `samples_per_label` rows of each label."""
    order = pool.copy()
    rng.shuffle(order)
    counts: dict[str, int] = {}
    keep = []
    for i in order:
        lab = labels[i]
        if counts.get(lab, 0) < samples_per_label:
            counts[lab] = counts.get(lab, 0) + 1
            keep.append(i)
    return np.asarray(keep)


def fit_score(x_train, y_train, x_test, y_test, max_iter: int = 100) -> tuple[float, float, np.ndarray]:
    """Accuracy, macro-F1 and the per-row hits (1.0 where the prediction is right)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    clf = LogisticRegression(max_iter=max_iter, random_state=SEED)
    clf.fit(x_train, y_train)
    pred = clf.predict(x_test)
    hits = (pred == y_test).astype(np.float64)
    return float(accuracy_score(y_test, pred)), float(f1_score(y_test, pred, average="macro")), hits


def _summary(accs, f1s, size, hits: np.ndarray) -> dict:
    """`hits`: per evaluated row, the share of experiments that classified it right (bootstrap units)."""
    metrics = {
        "accuracy": 100 * float(np.mean(accs)),
        "f1_macro": 100 * float(np.mean(f1s)),
        "accuracy_std": 100 * float(np.std(accs)),
        "f1_macro_std": 100 * float(np.std(f1s)),
    }
    return {
        "main_metric": "accuracy",
        "main_score": metrics["accuracy"],
        "metrics": metrics,
        "size": size,
        "units": {"scores": [round(float(h), 4) for h in hits]},
    }


def _labelled_file(path: Path, split: str) -> Path:
    return path if path.suffix in (".jsonl", ".gz") or path.is_file() else path / f"{split}.jsonl"


def evaluate_classification(spec, path: Path, embed) -> dict:
    task = spec.option("task")
    n_exp = int(spec.option("n_experiments", 10))
    per_label = int(spec.option("samples_per_label", 8))
    max_iter = int(spec.option("max_iter", 100))
    train_split = spec.option("train_split")
    if train_split:
        return _with_split(spec, path, embed, task, train_split, n_exp, per_label, max_iter)
    return _cross_validated(spec, path, embed, task, per_label, max_iter)


def _with_split(spec, path, embed, task, train_split, n_exp, per_label, max_iter) -> dict:
    test = load_labelled_texts(_labelled_file(path, spec.split))
    train = load_labelled_texts(_labelled_file(path, train_split))
    keep = stratified_subset(test.labels, spec.option("max_rows"))
    test = LabelledTexts(test.name, [test.texts[i] for i in keep], [test.labels[i] for i in keep])
    y_train_all = np.asarray(train.labels)
    rng = np.random.RandomState(SEED)
    pool = np.arange(len(y_train_all))
    draws = [undersample(y_train_all, pool, per_label, rng) for _ in range(n_exp)]
    used = np.unique(np.concatenate(draws))
    train_emb = embed([train.texts[i] for i in used], task, f"{spec.name}-{train_split}-sampled")
    row = {int(i): r for r, i in enumerate(used)}
    test_emb = embed(test.texts, task, f"{spec.name}-{spec.split}")
    y_test = np.asarray(test.labels)
    unseen = sorted(set(y_test) - set(y_train_all))
    if unseen:
        raise ValueError(
            f"{_labelled_file(path, spec.split)}: label(s) {unseen[:5]} never occur in the {train_split} split"
        )
    accs, f1s, hits = [], [], np.zeros(len(y_test))
    for draw in draws:
        acc, f1, hit = fit_score(train_emb[[row[int(i)] for i in draw]], y_train_all[draw], test_emb, y_test, max_iter)
        accs.append(acc)
        f1s.append(f1)
        hits += hit / n_exp
    return _summary(
        accs,
        f1s,
        {
            "test": len(y_test),
            "train_per_experiment": int(np.mean([len(d) for d in draws])),
            "experiments": n_exp,
            "labels": len(set(y_test)),
        },
        hits,
    )


def _cross_validated(spec, path, embed, task, per_label, max_iter) -> dict:
    from sklearn.model_selection import StratifiedKFold

    data = load_labelled_texts(_labelled_file(path, spec.split))
    keep = stratified_subset(data.labels, spec.option("max_rows"))
    texts = [data.texts[i] for i in keep]
    y = np.asarray([data.labels[i] for i in keep])
    folds = int(spec.option("cv_folds", 10))
    if np.min(np.unique(y, return_counts=True)[1]) < folds:
        raise ValueError(f"{_labelled_file(path, spec.split)}: every label needs >= {folds} rows for {folds}-fold CV")
    emb = embed(texts, task, f"{spec.name}-{spec.split}")
    rng = np.random.RandomState(SEED)
    accs, f1s, hits = [], [], np.zeros(len(y))
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=SEED).split(emb, y):
        draw = undersample(y, train_idx, per_label, rng)
        acc, f1, hit = fit_score(emb[draw], y[draw], emb[test_idx], y[test_idx], max_iter)
        accs.append(acc)
        f1s.append(f1)
        hits[test_idx] = hit  # every row is tested in exactly one fold
    return _summary(
        accs,
        f1s,
        {"rows": len(y), "folds": folds, "train_per_experiment": per_label * len(set(y)), "labels": len(set(y))},
        hits,
    )
