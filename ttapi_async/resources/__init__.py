"""The endpoints, one resource per family."""

from .dalle3 import Dalle3
from .images import Images, ImageStream

__all__ = ["Dalle3", "ImageStream", "Images"]
