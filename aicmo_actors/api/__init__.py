"""The control plane as the composition root puts it together, and its HTTP API (`/api/v1`)."""
