"""The endpoints, one resource per family."""

from .dalle3 import Dalle3
from .images import Images, ImageStream
from .jobs import GPT, GPT4o, JobFamily, JobResource

__all__ = ["GPT", "Dalle3", "GPT4o", "ImageStream", "Images", "JobFamily", "JobResource"]
