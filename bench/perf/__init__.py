"""`make bench`, in process: the handler's read paths, cold start and memory against DESIGN.md's floors."""
