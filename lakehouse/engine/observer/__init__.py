"""What happened: ObservedOps (every operation call), the storage journal, and OTLP export."""

from lakehouse.engine.observer.journal import StorageJournal
from lakehouse.engine.observer.ops import ObservedOp, Observer

__all__ = ["ObservedOp", "Observer", "StorageJournal"]
