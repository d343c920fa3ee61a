"""Media streaming: what can be uploaded, both upload protocols, atomic downloads."""

__all__: list[str] = []
