"""Metadata database: engine, transactions, tables and migrations."""
