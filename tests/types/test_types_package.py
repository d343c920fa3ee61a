"""Every model of :mod:`diffio_async.types`: frozen, keyword-only, snake_case, documented."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from types_helpers import public_model_classes

from diffio_async import types as m


@pytest.mark.parametrize("cls", public_model_classes(), ids=lambda c: c.__name__)
def test_every_model_is_frozen_keyword_only_and_documented(cls: type[Any]) -> None:
    assert cls.__doc__ and "\n" not in cls.__doc__.strip()
    assert all(f.kw_only for f in attrs.fields(cls))
    params = attrs.fields_dict(cls)
    assert all(name == name.lower() for name in params)  # snake_case
    assert "__setattr__" in vars(cls)  # attrs installs a raising __setattr__ on frozen classes


def test_instances_are_frozen_and_positional_args_rejected() -> None:
    stage = m.Stage()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stage.progress = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        m.Stage("job")  # type: ignore[call-arg]
    assert m.Stage(progress=5) == m.Stage(progress=5)
