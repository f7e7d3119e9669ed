"""Paired bootstrap intervals on cases with a known answer, and the unit statistics against scipy/sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm, spearmanr
from sklearn.metrics import average_precision_score, v_measure_score

from mote_rag.evaluation.gains import compute_gains, gains_markdown
from mote_rag.evaluation.intervals import PairedBootstrap, _arrays, statistic, v_measure
from mote_rag.evaluation.training_mix import recipe_sources, source_of, split_by_mix


def result(datasets: dict) -> dict:
    """An evaluation result with the given {name: (type, units)}; main_score from the units."""
    out = {}
    for name, (type_, units) in datasets.items():
        out[name] = {"type": type_, "units": units, "main_score": statistic(_arrays(units)), "main_metric": "m"}
    return {"datasets": out}


def test_identical_models_give_zero_and_a_zero_interval():
    rng = np.random.default_rng(0)
    r = result({"q": ("retrieval", {"scores": rng.random(200).tolist()})})
    iv = PairedBootstrap([r], [r], n_boot=200).interval(["q"])
    assert (iv.delta, iv.low, iv.high) == (0.0, 0.0, 0.0)
    assert iv.tie


def test_constant_shift_is_recovered_exactly():
    rng = np.random.default_rng(1)
    a = rng.random(300) * 0.5
    iv = PairedBootstrap(
        [result({"q": ("retrieval", {"scores": a.tolist()})})],
        [result({"q": ("retrieval", {"scores": (a + 0.05).tolist()})})],
        n_boot=300,
    ).interval(["q"])
    assert iv.delta == pytest.approx(5.0)
    assert iv.low == pytest.approx(5.0) and iv.high == pytest.approx(5.0)
    assert not iv.tie


def test_interval_of_a_mean_difference_matches_the_normal_interval():
    rng = np.random.default_rng(2)
    n = 2000
    a = rng.normal(0.5, 0.2, n)
    b = a + rng.normal(0.01, 0.1, n)  # paired: the shared part cancels, the sd of the difference is 0.1
    iv = PairedBootstrap(
        [result({"q": ("retrieval", {"scores": a.tolist()})})],
        [result({"q": ("retrieval", {"scores": b.tolist()})})],
        n_boot=2000,
    ).interval(["q"])
    d = 100 * (b - a)
    half = norm.ppf(0.975) * d.std(ddof=1) / np.sqrt(n)
    assert iv.delta == pytest.approx(d.mean())
    assert iv.high - iv.low == pytest.approx(2 * half, rel=0.1)
    assert (iv.low + iv.high) / 2 == pytest.approx(d.mean(), abs=0.1 * half)


def test_coverage_is_near_95_percent():
    """Over repeated samples with a known true difference (1 point), about 95% of intervals contain it."""
    rng = np.random.default_rng(3)
    hits = 0
    trials = 120
    for t in range(trials):
        a = rng.random(150)
        b = a + 0.01 + rng.normal(0, 0.05, 150)
        iv = PairedBootstrap(
            [result({"q": ("retrieval", {"scores": a.tolist()})})],
            [result({"q": ("retrieval", {"scores": b.tolist()})})],
            n_boot=400,
            seed=t,
        ).interval(["q"])
        hits += iv.low <= 1.0 <= iv.high
    assert 0.88 <= hits / trials <= 0.995


def test_seeds_widen_the_interval_to_the_seed_spread():
    """b's two seeds are a shifted by exactly +2 and +4 points: delta 3, interval from 2 to 4."""
    a = np.linspace(0.1, 0.6, 100)
    ra = result({"q": ("retrieval", {"scores": a.tolist()})})
    rb = [result({"q": ("retrieval", {"scores": (a + s).tolist()})}) for s in (0.02, 0.04)]
    iv = PairedBootstrap([ra], rb, n_boot=400).interval(["q"])
    assert iv.delta == pytest.approx(3.0)
    assert iv.low == pytest.approx(2.0) and iv.high == pytest.approx(4.0)


def test_unit_statistics_match_scipy_and_sklearn():
    rng = np.random.default_rng(4)
    pred = np.round(rng.random(300), 2)  # ties on purpose
    gold = rng.integers(0, 6, 300).astype(float)
    label = rng.integers(0, 2, 300)
    assert statistic(_arrays({"pred": pred.tolist(), "gold": gold.tolist()})) == pytest.approx(
        100 * spearmanr(pred, gold)[0], abs=1e-9
    )
    assert statistic(_arrays({"pred": pred.tolist(), "label": label.tolist()})) == pytest.approx(
        100 * average_precision_score(label, pred), abs=1e-9
    )
    labels = rng.integers(0, 5, (3, 400))
    clusters = (labels + rng.integers(0, 3, (3, 400))) % 6
    expected = np.mean([v_measure_score(labels[r], clusters[r]) for r in range(3)])
    assert statistic(_arrays({"labels": labels.tolist(), "clusters": clusters.tolist()})) == pytest.approx(
        100 * expected, abs=1e-9
    )
    assert v_measure(labels[0], labels[0]) == pytest.approx(1.0)


def test_different_units_are_refused():
    a = result({"q": ("retrieval", {"scores": [0.1] * 10})})
    b = result({"q": ("retrieval", {"scores": [0.1] * 11})})
    with pytest.raises(ValueError, match="different units"):
        PairedBootstrap([a], [b], n_boot=10).interval(["q"])


def test_gains_split_types_in_and_out_of_the_mix():
    rng = np.random.default_rng(5)
    x = rng.random(100)
    base = result(
        {
            "scifact": ("retrieval", {"scores": x.tolist()}),
            "mr": ("classification", {"scores": x.tolist()}),
            "banking77": ("classification", {"scores": x.tolist()}),
        }
    )
    better = result(
        {
            "scifact": ("retrieval", {"scores": (x + 0.02).tolist()}),
            "mr": ("classification", {"scores": (x - 0.01).tolist()}),
            "banking77": ("classification", {"scores": (x + 0.03).tolist()}),
        }
    )
    sources = recipe_sources({"retrieval": ["scifact"], "classification": ["banking77"]})
    gains = compute_gains({"base": [base], "model": [better]}, "base", sources, n_boot=100)
    g = gains["models"]["model"]
    assert g["in_mix"] == ["scifact", "banking77"] and g["out_of_mix"] == ["mr"]
    assert g["types"]["in_mix"]["retrieval"].delta == pytest.approx(2.0)
    assert g["types"]["in_mix"]["classification"].delta == pytest.approx(3.0)
    assert g["types"]["out_of_mix"]["classification"].delta == pytest.approx(-1.0)
    assert g["overall"]["in_mix"].delta == pytest.approx(2.5)
    assert g["types"]["all"]["classification"].delta == pytest.approx(1.0)
    md = gains_markdown(gains)
    assert "Outside the training mix" in md and "-1.00 [-1.00, -1.00]" in md and "mr |" in md


def test_training_mix_sources():
    assert source_of("banking77_clustering") == "banking77"
    assert source_of("sickr") == "sick" and source_of("trec_fine") == "trec"
    assert split_by_mix(["sickr", "stsb", "scifact_rerank"], {"sick", "scifact"}) == {
        "in_mix": ["sickr", "scifact_rerank"],
        "out_of_mix": ["stsb"],
    }


def test_cli_compare_groups_seeds_by_model_name_and_writes_intervals(tmp_path, capsys):
    """`mote-rag eval --compare`: files naming the same model are its seeds; gains.md carries the intervals."""
    import json

    from mote_rag.cli.main import main

    x = np.linspace(0.1, 0.7, 80)
    files = []
    for i, (model, shift) in enumerate((("base", 0.0), ("mote", 0.02), ("mote", 0.04))):
        r = result(
            {
                "scifact": ("retrieval", {"scores": (x + shift).tolist()}),
                "stsb": ("sts", {"pred": x.tolist(), "gold": (x**2).tolist()}),
            }
        )
        r.update(
            model=model,
            averages={"retrieval": r["datasets"]["scifact"]["main_score"], "sts": r["datasets"]["stsb"]["main_score"]},
            average_of_types=0.0,
        )
        files.append(tmp_path / f"{model}-{i}.json")
        files[-1].write_text(json.dumps(r))
    rc = main(
        ["eval", "--compare", *map(str, files), "--baseline", "base", "--out", str(tmp_path / "cmp"), "--n-boot", "200"]
    )
    assert rc == 0, capsys.readouterr().err
    md = (tmp_path / "cmp" / "gains.md").read_text()
    assert "seeds: base 1, mote 2" in md
    assert "| scifact* | +3.00 [+2.00, +4.00] |" in md  # scifact is in the default recipe's mix
    assert "| stsb | +0.00 [+0.00, +0.00] = |" in md  # STS-B is not
    assert (tmp_path / "cmp" / "gains.png").read_bytes()[:4] == b"\x89PNG"
    assert (
        main(
            [
                "eval",
                "--compare",
                *map(str, files),
                "--out",
                str(tmp_path / "c2"),
                "--train-config",
                str(tmp_path / "nope.json"),
            ]
        )
        == 2
    )
