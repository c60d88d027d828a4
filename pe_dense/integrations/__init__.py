"""Optional third-party frameworks (SAM 2, ...), each imported only inside its own module."""
