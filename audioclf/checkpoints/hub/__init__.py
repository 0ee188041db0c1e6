"""Models on the Hugging Face Hub: fetching (:mod:`.fetch`) and administering the cache (:mod:`.cache`).

Both use the standard cache layout and environment (``HF_ENDPOINT``, ``HF_HOME``, ``HF_HUB_CACHE``,
``HF_HUB_OFFLINE``, ``HF_TOKEN``) through ``huggingface_hub``, so models downloaded by ``transformers`` are reused
and the other way round. Importing this package does not import ``huggingface_hub``.
"""

from audioclf.checkpoints.hub._env import default_cache_dir, hub_endpoint, is_offline_mode, is_valid_repo_id
from audioclf.checkpoints.hub.cache import (AUDIO_MODEL_TYPES, CachedModel, CachedRevision, CacheRemoval,
                                            CacheStatus, RemovedFromCache, cache_status, list_cached_models,
                                            plan_removal, remove_cached_model)
from audioclf.checkpoints.hub.fetch import FetchedModel, fetch_model

__all__ = [
    "AUDIO_MODEL_TYPES",
    "CacheRemoval",
    "CacheStatus",
    "CachedModel",
    "CachedRevision",
    "FetchedModel",
    "RemovedFromCache",
    "cache_status",
    "default_cache_dir",
    "fetch_model",
    "hub_endpoint",
    "is_offline_mode",
    "is_valid_repo_id",
    "list_cached_models",
    "plan_removal",
    "remove_cached_model",
]
