"""Operations: health, Prometheus metrics and structured request logs."""
