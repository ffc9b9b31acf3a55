"""client_review."""
