"""The tables of delivery (prefix ``delivery_``). PLACEHOLDER: none yet."""
