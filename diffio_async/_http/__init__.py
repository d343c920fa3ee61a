"""The HTTP layer: the only code that talks to httpx2 (transport, retry policy)."""

__all__: list[str] = []
