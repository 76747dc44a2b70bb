"""A dumb object store that knows nothing about OCI: the driver Protocol and its implementations."""
