"""A plain-Python model of the slot lifecycle (`dita.model.reference`): the
oracle of the property tests and the reference the benchmarks compare the
Rust kernel with."""
