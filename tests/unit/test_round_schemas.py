"""The round request bodies against the ml code they feed."""

from __future__ import annotations

from typing import get_args


def test_the_api_offers_exactly_the_encoders_the_network_builds() -> None:
    from ml.network import ENCODERS
    from server.round_schemas import Encoder

    assert set(get_args(Encoder)) == set(ENCODERS)
