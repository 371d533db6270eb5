"""The curation loop: batches of data rows for labellers, the labelling queue with rework, and the
round trip through labelling tools (exports and re-imports in :mod:`slicewise.io`).

- :mod:`slicewise.curation.batches`: ``create_batch``, ``list_batches``, ``get_batch``, ``batch_rows``,
  ``update_batch``, ``drop_batch``.
- :mod:`slicewise.curation.queue`: queue states per data row (to_label, in_review, rework, done),
  ``send_to_rework``, ``move``, ``queue_counts``, ``queue_states``, ``history``.
"""

from __future__ import annotations

from slicewise.curation.batches import (
           Batch,
           batch_rows,
           create_batch,
           drop_batch,
           get_batch,
           list_batches,
           update_batch,
)
from slicewise.curation.queue import STATES, move, queue_counts, queue_states, send_to_rework

__all__ = ["Batch", "STATES", "batch_rows", "create_batch", "drop_batch", "get_batch", "list_batches", "move",
           "queue_counts", "queue_states", "send_to_rework", "update_batch"]
