"""The HTTP layer: the only code that talks to httpx (transport, retry policy)."""

__all__: list[str] = []
