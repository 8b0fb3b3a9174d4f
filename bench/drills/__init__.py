"""`make drill`: the bad days of DESIGN.md (Reliability) under load, each with its bars and its row."""
