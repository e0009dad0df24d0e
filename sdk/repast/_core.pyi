# Hand-written stub of the Rust extension (core-rs); keep it in step with core-rs/src/lib.rs.
VERSION: str

class RepastError(Exception): ...
