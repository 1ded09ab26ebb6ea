import numpy as np
import pytest

from toolkiln.embed import embed_texts

TEXTS = [
    "get weather forecast: Get the weather forecast for a city. (city, days)",
    "What will the weather be in Lyon tomorrow?",
    "book hotel: Book a hotel by its id. (hotel id, nights)",
]


def test_bfloat16_encoder_agrees_with_float32_and_stays_unit_norm():
    e32 = embed_texts(TEXTS)
    e16 = embed_texts(TEXTS, dtype="bfloat16")
    assert e16.dtype == np.float32 and e16.shape == (3, 384)
    assert np.allclose(np.linalg.norm(e16, axis=1), 1.0, atol=1e-5)
    assert (e32 * e16).sum(axis=1).min() > 0.995
    # the ranking the consistency check relies on survives: the request is nearest the weather API
    sims = e16[[0, 2]] @ e16[1]
    assert sims[0] > sims[1]


def test_unknown_dtype_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="float16.*float32"):
        embed_texts(TEXTS, dtype="float16")
