"""Durable background jobs in the metadata database: a queue with leases, retries and
progress (:mod:`dockyard.jobs.queue`), and the worker that runs them (:mod:`dockyard.jobs.worker`)."""
