import numpy as np
import pytest

from toolkiln.adapt.config import DigitsDataConfig
from toolkiln.adapt.digits import (Domain, _mnist_halves, build_domain, contact_sheet, load_photo,
                                   render_digit, stratified_split)


def test_stratified_split_sizes_balance_and_disjointness():
    y = np.repeat(np.arange(10), 30)
    tr, te = stratified_split(y, 105, 50, seed=3)
    assert len(tr) == 105 and len(te) == 50 and not set(tr) & set(te)
    counts = np.bincount(y[tr], minlength=10)
    assert counts.max() - counts.min() <= 1
    again = stratified_split(y, 105, 50, seed=3)
    assert np.array_equal(tr, again[0]) and np.array_equal(te, again[1])
    with pytest.raises(ValueError, match="pool of 300"):
        stratified_split(y, 250, 100, seed=0)


def test_mnist_and_mnistm_use_disjoint_digits():
    (a, _), (b, _) = _mnist_halves(0)
    ha = {x.tobytes() for x in a}
    assert len(a) + len(b) == 5000 and not any(x.tobytes() in ha for x in b)


@pytest.mark.parametrize("name", ["mnist", "optdigits", "syndigits", "mnistm"])
def test_every_domain_builds_rgb_balanced_and_deterministic(name):
    cfg = DigitsDataConfig(n_train=20, n_test=20, fonts=["DejaVuSans.ttf", "cmr10.ttf"],
                           photos=["sklearn:china.jpg", "skimage:coffee"])
    d = build_domain(name, cfg, seed=1)
    assert d.X_train.shape == (20, 28, 28, 3) and d.X_train.dtype == np.uint8
    assert d.X_test.shape == (20, 28, 28, 3)
    assert np.bincount(d.y_train, minlength=10).tolist() == [2] * 10
    assert d.X_train.std() > 10  # not blank
    d2 = build_domain(name, cfg, seed=1)
    assert np.array_equal(d.X_train, d2.X_train) and np.array_equal(d.y_test, d2.y_test)


def test_domains_differ_in_style():
    cfg = DigitsDataConfig(n_train=20, n_test=20)
    means = {n: build_domain(n, cfg, 0).X_train.reshape(-1, 3).mean(0) for n in ("mnist", "mnistm", "syndigits")}
    assert np.allclose(means["mnist"][0], means["mnist"])  # grayscale
    assert means["mnistm"].mean() > means["mnist"].mean() + 20  # photo backgrounds are brighter than black
    assert means["syndigits"].mean() > means["mnist"].mean() + 20


def test_size_32_and_bad_inputs(tmp_path):
    cfg = DigitsDataConfig(n_train=20, n_test=20, image_size=32)
    assert build_domain("optdigits", cfg, 0).X_train.shape == (20, 32, 32, 3)
    with pytest.raises(ValueError, match="unknown domain"):
        build_domain("svhn", cfg, 0)
    with pytest.raises(FileNotFoundError, match="bundled with matplotlib"):
        render_digit(3, "Comic.ttf", np.random.default_rng(0), 28)
    with pytest.raises(ValueError, match="skimage:<function>"):
        load_photo("web:cat.jpg")
    with pytest.raises(ValueError, match="not an RGB photo"):
        load_photo("skimage:camera")
    np.savez(tmp_path / "bad.npz", X=np.zeros(1))
    with pytest.raises(ValueError, match="missing arrays"):
        Domain.load(tmp_path / "bad.npz")


def test_domain_roundtrip_and_contact_sheet(tmp_path):
    d = build_domain("optdigits", DigitsDataConfig(n_train=30, n_test=20), 0)
    d.save(tmp_path / "optdigits.npz")
    e = Domain.load(tmp_path / "optdigits.npz")
    assert e.name == "optdigits" and np.array_equal(d.X_test, e.X_test)
    sheet = contact_sheet(d, per_class=3)
    assert sheet.shape == (280, 84, 3)
    first_zero = d.X_train[np.flatnonzero(d.y_train == 0)[0]]
    assert np.array_equal(sheet[:28, :28], first_zero)
