"""The tables of client_review (prefix ``client_review_``). PLACEHOLDER: none yet."""
