"""The blocking client's parts: the loop thread, the resource groups and the generation
handle that :class:`~diffio_async.Diffio` puts in front of an ``AsyncDiffio``."""

__all__: list[str] = []
