"""Workflows above the client: restore, bulk, the ledger."""

__all__: list[str] = []
