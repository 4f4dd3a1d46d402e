"""A pickled object whose unpickling runs code (for safe-loading tests)."""
import os


class CodePayload:
    """Unpickling this calls ``os.makedirs(marker)``: proof of code run.

    Args:
        marker (str): The directory unpickling would create.
    """

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker, ))
