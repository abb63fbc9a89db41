"""Record maps, the translation of objects into records, and the indexer that owns them."""

from k8sgw.records import names

names.install()  # before any Name is used as a key: see names.py
