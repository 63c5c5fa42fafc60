"""The process runtime: data dir bootstrap and ``originlock serve``."""
