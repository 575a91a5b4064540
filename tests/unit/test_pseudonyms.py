"""upstream.pseudonyms without a database: the pads the load's SQL HMAC uses give Python's HMAC."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from upstream.pseudonyms import hmac_pads, pseudonym


@pytest.mark.parametrize("key", [b"k", b"x" * 64, b"long key " * 20])
def test_pads_compute_the_rfc_2104_hmac(key):
    inner, outer = hmac_pads(key)
    assert len(inner) == len(outer) == 64
    message = b"victim:WPS:WPS-2024-000001"
    # What core.hmac_sha256_hex computes from the two pads (migration 001).
    by_pads = hashlib.sha256(outer + hashlib.sha256(inner + message).digest()).hexdigest()
    assert by_pads == hmac.new(key, message, hashlib.sha256).hexdigest()
    assert pseudonym(key, "victim", "WPS", "WPS-2024-000001") == by_pads


def test_pseudonyms_differ_by_kind_agency_and_key():
    base = pseudonym(b"key", "victim", "WPS", "1")
    assert base != pseudonym(b"key", "incident", "WPS", "1")
    assert base != pseudonym(b"key", "victim", "LPS", "1")
    assert base != pseudonym(b"other", "victim", "WPS", "1")
