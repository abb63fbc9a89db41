"""Record maps, the translation of objects into records, and the indexer that owns them."""
