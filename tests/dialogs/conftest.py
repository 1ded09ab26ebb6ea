import pytest

from toolkiln.testing.pool import fixture_pool_frame


@pytest.fixture(scope="session")
def pool_frame():
    return fixture_pool_frame()


@pytest.fixture(scope="session")
def pool(pool_frame):
    from toolkiln.dialogs.pool import APIPool

    return APIPool.from_frame(pool_frame)
