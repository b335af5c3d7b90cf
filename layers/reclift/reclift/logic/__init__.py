"""The logic layer: one function per use case, called by the thin handlers, working through the data ports."""
