"""The web console (CONTRACT.md section 6): static files in `static/`, served by `routes.py`."""
