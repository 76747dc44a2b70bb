"""Metadata database: engine and transactions (:mod:`.engine`), the one MetaData that every
feature's ``tables.py`` defines its tables on (:mod:`.metadata`), and migrations."""
