"""What every benchmark script shares: its servers (`servers`), statistics and output (`output`)."""
