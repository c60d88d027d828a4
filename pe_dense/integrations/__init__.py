"""Optional third-party frameworks (detectron2, mmsegmentation, SAM 2), each imported only inside
its own module; they import the library, never the reverse."""
