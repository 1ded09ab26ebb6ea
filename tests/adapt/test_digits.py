import numpy as np
import pytest

from toolkiln.adapt.config import DigitsDataConfig
from toolkiln.adapt.digits import (Domain, _mnist_halves, build_domain, contact_sheet, load_photo,
                                   render_digit, render_house_number, stratified_split,
                                   subsample_train)


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


@pytest.mark.parametrize("name", ["mnist", "optdigits", "syndigits", "mnistm", "housenum", "strokes"])
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


def test_hard_domains_shift_colour_polarity_and_clutter():
    cfg = DigitsDataConfig(n_train=60, n_test=20, fonts=["DejaVuSans.ttf"], photos=["sklearn:china.jpg"])
    house, strokes = build_domain("housenum", cfg, 0).X_train, build_domain("strokes", cfg, 0).X_train
    assert np.abs(house[..., 0].astype(int) - house[..., 2]).mean() > 5  # coloured, not grey
    assert np.array_equal(strokes[..., 0], strokes[..., 2])  # grey
    # both polarities: the centre (the digit) is brighter than the border in some images, darker in others
    centre = strokes[:, 10:18, 10:18, 0].mean((1, 2))
    border = np.concatenate([strokes[:, :3, :, 0], strokes[:, -3:, :, 0]], 1).mean((1, 2))
    assert (centre > border).sum() >= 10 and (centre < border).sum() >= 10
    # housenum's neighbours put strokes at the left and right edges: on a flat wall, the edge columns vary
    # far beyond the pixel noise (sigma 0.05) in most images
    rng, flat = np.random.default_rng(0), [np.full((120, 120, 3), 0.5, np.float32)]
    imgs = np.stack([render_house_number(d % 10, "DejaVuSans.ttf", rng, 28, flat) for d in range(40)])
    edge_std = np.concatenate([imgs[:, 4:24, :4], imgs[:, 4:24, -4:]], 2).std((1, 2)).mean(-1)
    assert (edge_std > 0.1).mean() > 0.5


def test_subsample_train_keeps_test_split_and_balance():
    d = build_domain("optdigits", DigitsDataConfig(n_train=100, n_test=20), 0)
    s = subsample_train(d, 30, seed=1)
    assert len(s.y_train) == 30 and np.bincount(s.y_train, minlength=10).tolist() == [3] * 10
    assert np.array_equal(s.X_test, d.X_test)
    rows = {x.tobytes() for x in d.X_train}
    assert all(x.tobytes() in rows for x in s.X_train)
    assert subsample_train(d, 100, seed=1) is d
    with pytest.raises(ValueError, match="asked for 200 of 100"):
        subsample_train(d, 200, seed=1)


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
