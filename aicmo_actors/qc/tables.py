"""The tables of qc (prefix ``qc_``). PLACEHOLDER: none yet."""
