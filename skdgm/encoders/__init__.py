"""Document encoders: turn raw multilingual text into feature vectors.

:class:`MultilingualEncoder` is a pretrained transformer; :class:`NXVAE` is the paper's
cross-lingual VAE, trained from scratch on your documents. ``transformers``, ``tokenizers``
and ``torch`` are imported only when an encoder is fitted.
"""

from ._multilingual import (
    MultilingualEncoder,
    clear_embedding_cache,
    set_embedding_cache_limit,
)
from ._nxvae import NXVAE
from ._offline import OfflineModelUnavailableError

__all__ = [
    "NXVAE",
    "MultilingualEncoder",
    "OfflineModelUnavailableError",
    "clear_embedding_cache",
    "set_embedding_cache_limit",
]
