"""Regions of a catalog version: where its blobs are kept, copies between them (jobs), removal."""
