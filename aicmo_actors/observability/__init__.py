"""observability: usage metering (what each module did, counted once)."""
