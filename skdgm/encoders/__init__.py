"""Document encoders: turn raw multilingual text into feature vectors.

``transformers`` is imported only when an encoder is fitted.
"""

from ._multilingual import MultilingualEncoder, clear_embedding_cache
from ._offline import OfflineModelUnavailableError

__all__ = ["MultilingualEncoder", "OfflineModelUnavailableError", "clear_embedding_cache"]
