import numpy as np
import pytest

from toolkiln.embed import embed_texts

TEXTS = [
    "get weather forecast: Get the weather forecast for a city. (city, days)",
    "What will the weather be in Lyon tomorrow?",
    "book hotel: Book a hotel by its id. (hotel id, nights)",
]


@pytest.mark.parametrize(("dtype", "min_cosine"), [("bfloat16", 0.995), ("int8", 0.9)])
def test_reduced_precision_encoders_agree_with_float32_and_stay_unit_norm(dtype, min_cosine):
    e32 = embed_texts(TEXTS)
    low = embed_texts(TEXTS, dtype=dtype)
    assert low.dtype == np.float32 and low.shape == (3, 384)
    assert np.allclose(np.linalg.norm(low, axis=1), 1.0, atol=1e-5)
    assert not np.array_equal(low, e32)  # the encoder really ran at the lower precision
    assert (e32 * low).sum(axis=1).min() > min_cosine
    # the ranking the consistency check relies on survives: the request is nearest the weather API
    sims = low[[0, 2]] @ low[1]
    assert sims[0] > sims[1]


def test_unknown_dtype_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="float16.*float32"):
        embed_texts(TEXTS, dtype="float16")


def test_static_encoder_is_the_weighted_mean_of_its_word_pieces(tmp_path):
    from toolkiln.embed import StaticEncoder, _model, save_static

    _model.cache_clear()  # resets its statistics: the encoder below must not load MiniLM's transformer
    rng = np.random.default_rng(0)
    table, weights = rng.normal(size=(30522, 4)).astype(np.float32), rng.uniform(1, 3, 30522).astype(np.float32)
    save_static(tmp_path, table, weights, {"vocab": 30522})
    enc = StaticEncoder.load(tmp_path)
    out = enc.encode(["weather in Lyon", ""])
    ids = enc.tokenizer("weather in Lyon", add_special_tokens=False)["input_ids"]
    assert ids == [4633, 1999, 10241]  # MiniLM's (BERT uncased) word pieces
    assert _model.cache_info().misses == 0
    want = weights[ids] @ table[ids] / weights[ids].sum()
    assert np.allclose(out[0], want / np.linalg.norm(want), atol=1e-6)
    assert not out[1].any()  # no word pieces: the zero vector, similar to nothing
    assert enc.encode([]).shape == (0, 4)
    with pytest.raises(ValueError, match="do not match"):
        StaticEncoder(table, weights[:10])
    with pytest.raises(FileNotFoundError, match="distill_encoder"):
        StaticEncoder.load(tmp_path / "absent")


@pytest.mark.slow
def test_distilled_static_encoder_ranks_like_minilm(static_encoder):
    from toolkiln.embed import load_static

    z = np.load(static_encoder / "static_encoder.npz")
    assert z["table"].shape == (30522, 384) and np.abs(z["table"].mean(axis=0)).max() < 1e-4  # centred
    assert z["weights"][1996] < z["weights"][20000]  # "the" counts less than a rare word piece
    vecs = load_static(str(static_encoder)).encode(TEXTS)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    sims = vecs[[0, 2]] @ vecs[1]
    assert sims[0] > sims[1]  # the weather request is nearer the weather API than the hotel API


def test_static_table_choices():
    from toolkiln.embed import FIRST_WORD_ID, static_table

    rng = np.random.default_rng(1)
    raw = (rng.normal(size=(3000, 16)) + 5.0).astype(np.float32)  # one large shared direction, as MiniLM's have
    table, weights, meta = static_table(raw, drop=2)
    assert np.abs(table.mean(axis=0)).max() < 1e-4 and meta["dropped_components"] == 2
    top = np.linalg.svd(raw - raw.mean(axis=0), full_matrices=False)[2][:2]
    assert np.abs(table @ top.T).max() < 1e-3  # the top directions are gone
    assert weights[FIRST_WORD_ID] < weights[2500] and weights[0] == weights[FIRST_WORD_ID - 1]
    plain, ones, _ = static_table(raw, center=False, drop=0, weighting="uniform")
    assert np.array_equal(plain, raw) and (ones == 1).all()
    with pytest.raises(ValueError, match="expected 'log_rank' or 'uniform'"):
        static_table(raw, weighting="idf")
