"""Pure decisions: no I/O, imports only ``photosorter.records``."""
