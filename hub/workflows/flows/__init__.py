"""The flow definitions; importing this package registers every version that may still have runs."""
