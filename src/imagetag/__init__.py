"""imagetag: ingest images, detect the objects in them, tag them and find them again."""

__version__ = "0.1.0"
