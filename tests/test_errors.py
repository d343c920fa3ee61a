"""The error tree's shared constructor: details are declared, and the required ones given."""

from __future__ import annotations

import pytest

from diffio_async import APIStatusError, RestoreError


def test_an_error_refuses_details_it_does_not_declare_and_needs_those_without_default() -> None:
    with pytest.raises(TypeError, match="has no detail 'colour'"):
        RestoreError("x", stage="upload", colour="red")
    with pytest.raises(TypeError, match="needs status_code"):
        APIStatusError("x")
    error = APIStatusError("x", status_code=418)
    assert (error.status_code, error.code, error.api_call) == (418, None, True)
