"""The tables of production (prefix ``production_``). PLACEHOLDER: none yet."""
